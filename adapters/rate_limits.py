"""Request rates per token and concurrent streams per organisation.

The rate maths is the `limits` library's moving window, kept in process memory: one server
process owns its counters (a shared store comes with horizontal scaling, not before).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import attrs
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from conversation_service.domain.errors import RateLimited


@attrs.frozen(kw_only=True)
class RateDecision:
    """What the rate limiter said, with what goes in the X-RateLimit-* headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the window frees a request


class RequestRateLimiter:
    """At most `rate` (e.g. "600/minute") requests per token, in a moving window."""

    def __init__(self, rate: str) -> None:
        self._item: RateLimitItem = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @property
    def limit(self) -> int:
        return int(self._item.amount)

    def hit(self, key: str) -> RateDecision:
        allowed = self._limiter.hit(self._item, key)
        stats = self._limiter.get_window_stats(self._item, key)
        return RateDecision(
            allowed=allowed,
            limit=self.limit,
            remaining=max(0, int(stats.remaining)),
            reset_after=max(0.0, stats.reset_time - time.time()),
        )

    def check(self, key: str) -> RateDecision:
        """Count a request; RateLimited when over the limit."""
        decision = self.hit(key)
        if not decision.allowed:
            raise RateLimited(
                f"too many requests: at most {self._item.amount} per "
                f"{self._item.get_expiry()} s for this token",
                retry_after=max(1.0, math.ceil(decision.reset_after)),
            )
        return decision


class StreamSlots:
    """At most `per_org` streams open at once for one organisation."""

    def __init__(self, per_org: int) -> None:
        self.per_org = per_org
        self._open: Counter[UUID] = Counter()

    def open_count(self, org_id: UUID) -> int:
        return self._open[org_id]

    def acquire(self, org_id: UUID) -> None:
        if self._open[org_id] >= self.per_org:
            raise RateLimited(
                f"this organisation already has {self.per_org} streams open; close one or wait",
                retry_after=1.0,
            )
        self._open[org_id] += 1

    def release(self, org_id: UUID) -> None:
        self._open[org_id] -= 1
        if self._open[org_id] <= 0:
            del self._open[org_id]

    @contextmanager
    def slot(self, org_id: UUID) -> Iterator[None]:
        self.acquire(org_id)
        try:
            yield
        finally:
            self.release(org_id)
