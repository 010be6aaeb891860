"""When to try a provider request again: bounded exponential backoff that honours Retry-After."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import attrs


@attrs.frozen(kw_only=True)
class Retries:
    """How often and how long to retry a request that failed before the first token."""

    max_retries: int = 2  # attempts after the first
    max_wait: float = 30.0  # seconds; a longer Retry-After is not waited for
    base: float = 0.5  # seconds before the first retry, doubled for each one after it
    cap: float = 8.0  # seconds; no backoff waits longer

    def __attrs_post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {self.max_retries}")
        if not (0 <= self.max_wait < math.inf and 0 <= self.base <= self.cap < math.inf):
            raise ValueError("retry waits must be finite and 0 <= base <= cap, max_wait >= 0")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1, 2, ...) when the upstream said none.

        Half of it is random ("equal jitter"), so that clients turned away together do not
        all come back at the same instant.
        """
        ceiling = min(self.cap, self.base * 2 ** (retry - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds the upstream asked us to wait, or None when it did not say (or said nonsense).

    `headers` are looked up by lowercase names.

    `retry-after-ms` (OpenAI, Azure) is more precise than `retry-after` and wins; `retry-after`
    is delta-seconds or an HTTP-date (RFC 9110, 10.2.3).
    """
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; email.utils leaves "-0000" naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < math.inf else None
