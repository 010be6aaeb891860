"""When the client tries a request again, and how long it waits first.

Retried: 429 and 503 (after their Retry-After, else a backoff), a 409 whose first request
with the same Idempotency-Key is still running, and connection failures (refused, reset,
dropped before the answer, timed out). Every POST carries an Idempotency-Key made once per
call and reused by its retries, so a retry never does the work twice; GETs are safe anyway.
Nothing else is retried: a 400 or 404 would answer the same again.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import attrs
import httpx

from conversation_service.client.errors import error_code

# Failures of the connection itself: a retry on a new connection may well succeed.
# (httpx's other TransportErrors, a bad URL scheme or a proxy's refusal, would fail again.)
RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often, and how long, to retry a request that failed in a way that may pass."""

    max_retries: int = 4  # attempts after the first
    max_wait: float = 60.0  # seconds; a longer Retry-After is not waited for: the error raises
    base: float = 0.25  # seconds before the first retry, doubled for each one after it
    cap: float = 8.0  # seconds; no backoff waits longer

    def __attrs_post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {self.max_retries}")
        if not (0 <= self.max_wait < math.inf and 0 <= self.base <= self.cap < math.inf):
            raise ValueError("retry waits must be finite, with 0 <= base <= cap and max_wait >= 0")

    def backoff(self, retry: int) -> float:
        """Seconds before retry number `retry` (1, 2, ...) when the server said none.

        Half of it is random, so that clients turned away together do not all return at once.
        """
        ceiling = min(self.cap, self.base * 2.0 ** (retry - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@attrs.define
class Attempts:
    """The retries of one logical call: each failure says how long to wait, or None: raise."""

    policy: RetryPolicy
    retries: int = 0

    def after_error(self, error: Exception) -> float | None:
        if not isinstance(error, RETRYABLE_ERRORS):
            return None
        return self.next_wait(None)

    def after_response(self, response: httpx.Response) -> float | None:
        """For an error answer whose body was read."""
        status = response.status_code
        if status in (429, 503):
            return self.next_wait(retry_after(response.headers))
        if status == 409 and error_code(response) == "idempotency_key_in_flight":
            return self.next_wait(None)
        return None

    def next_wait(self, asked: float | None) -> float | None:
        """Seconds before the next retry (`asked`: what the server said), or None: give up."""
        if self.retries >= self.policy.max_retries:
            return None
        if asked is not None and asked > self.policy.max_wait:
            return None  # not worth holding the caller that long: let it decide
        self.retries += 1
        return self.policy.backoff(self.retries) if asked is None else asked

    def progressed(self) -> None:
        """The call got somewhere (a stream delivered events): its retries start again."""
        self.retries = 0


def retry_after(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds the server asked to wait (`Retry-After`: delta-seconds or an HTTP-date), or
    None when it did not say, or said nonsense."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; email.utils leaves "-0000" naive
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    return seconds if 0 <= seconds < math.inf else None
