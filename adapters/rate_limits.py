"""Request rates per token and concurrent streams per organisation.

Both count the same way, the sliding-window counter: this window's hits plus the last
window's, weighted by how much of it is still in view. One instance alone keeps the
counters in memory, and the maths is the `limits` library's. Several instances on one
PostgreSQL share them through the database (counters in adapters/sql/cluster.py): `limits`
has no PostgreSQL storage, so that is one row a token a window and one statement a request.

(The moving window that `limits` also offers keeps one entry per request and inserts each
at the front of a list; with a high limit, every request moved thousands of them.)
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Protocol
from uuid import UUID

import attrs
import trio
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from conversation_service.domain.errors import RateLimited


@attrs.frozen(kw_only=True)
class RateDecision:
    """What the rate limiter said, with what goes in the X-RateLimit-* headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the window frees a request


class RateLimiter(Protocol):
    """At most some requests per token in a window."""

    async def hit(self, key: str) -> RateDecision:
        """Count a request of `key` and say whether it is allowed."""
        ...

    def refusal(self, decision: RateDecision) -> RateLimited: ...


class _Rate:
    def __init__(self, rate: str) -> None:
        self._item: RateLimitItem = parse(rate)

    @property
    def limit(self) -> int:
        return int(self._item.amount)

    @property
    def window(self) -> int:
        return int(self._item.get_expiry())

    def refusal(self, decision: RateDecision) -> RateLimited:
        return RateLimited(
            f"too many requests: at most {self._item.amount} per {self.window} s for this token",
            retry_after=max(1.0, math.ceil(decision.reset_after)),
        )


class _SweptMemoryStorage(MemoryStorage):
    """`limits`' MemoryStorage without its expiry thread.

    MemoryStorage starts a `threading.Timer` to drop expired counters 10 ms after any
    change when none is running: under load, a new thread a hundred times a second, each
    taking the GIL from the event loop. Here expired counters are dropped by `sweep`, which
    the limiter calls at most once a window; a counter read after its expiry is dropped by
    `get` anyway.
    """

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the private one it calls
        pass

    def sweep(self) -> None:
        self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class RequestRateLimiter(_Rate):
    """At most `rate` (e.g. "600/minute") requests per token, in a sliding-window counter,
    in memory."""

    def __init__(self, rate: str) -> None:
        super().__init__(rate)
        self._storage = _SweptMemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._next_sweep = time.monotonic() + self.window

    async def hit(self, key: str) -> RateDecision:
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.window
            self._storage.sweep()
        allowed = self._limiter.hit(self._item, key)
        stats = self._limiter.get_window_stats(self._item, key)
        return RateDecision(
            allowed=allowed,
            limit=self.limit,
            remaining=max(0, int(stats.remaining)),
            reset_after=max(0.0, stats.reset_time - time.time()),
        )


class SharedCounters(Protocol):
    async def hit(self, key: str, window_start: int, window: int) -> tuple[int, int]: ...

    async def take_slot(self, org_id: UUID, most: int) -> bool: ...

    async def give_slot(self, org_id: UUID) -> None: ...


class SharedRateLimiter(_Rate):
    """The same limit, counted by every instance together in the database."""

    def __init__(self, rate: str, counters: SharedCounters) -> None:
        super().__init__(rate)
        self._counters = counters

    async def hit(self, key: str) -> RateDecision:
        now = time.time()
        window = self.window
        current, before = await self._counters.hit(key, int(now // window) * window, window)
        into = (now % window) / window  # how much of this window has passed
        estimate = before * (1 - into) + current
        return RateDecision(
            allowed=estimate <= self.limit,
            limit=self.limit,
            remaining=max(0, self.limit - math.ceil(estimate)),
            reset_after=window * (1 - into),
        )


class StreamSlots:
    """At most `per_org` streams open at once for one organisation, in memory."""

    def __init__(self, per_org: int) -> None:
        self.per_org = per_org
        self._open: Counter[UUID] = Counter()

    def open_count(self, org_id: UUID) -> int:
        return self._open[org_id]

    async def acquire(self, org_id: UUID) -> None:
        if self._open[org_id] >= self.per_org:
            raise self._full()
        self._open[org_id] += 1

    def release(self, org_id: UUID) -> None:
        self._open[org_id] -= 1
        if self._open[org_id] <= 0:
            del self._open[org_id]

    def _full(self) -> RateLimited:
        return RateLimited(
            f"this organisation already has {self.per_org} streams open; close one or wait",
            retry_after=1.0,
        )


class SharedStreamSlots(StreamSlots):
    """The same cap, over every instance's streams, held in the database.

    Releasing is synchronous for the HTTP edge (a stream's end may be noticed where nothing
    can be awaited): the slot is given back in the database by `run`, in the background.
    """

    def __init__(self, per_org: int, counters: SharedCounters) -> None:
        super().__init__(per_org)
        self._counters = counters
        self._give, self._given = trio.open_memory_channel[UUID](math.inf)

    async def acquire(self, org_id: UUID) -> None:
        if not await self._counters.take_slot(org_id, self.per_org):
            raise self._full()
        self._open[org_id] += 1

    def release(self, org_id: UUID) -> None:
        super().release(org_id)
        self._give.send_nowait(org_id)

    async def run(self) -> None:
        """Give released slots back, until cancelled."""
        async for org_id in self._given:
            await self._counters.give_slot(org_id)
