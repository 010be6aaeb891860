"""The in-memory request rate: the sliding-window counter, without a thread per request."""

from __future__ import annotations

import threading

import trio

from conversation_service.adapters.rate_limits import RequestRateLimiter


async def test_the_limit_is_kept_per_key_with_what_remains():
    limiter = RequestRateLimiter("3/minute")
    decisions = [await limiter.hit("a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all(d.limit == 3 for d in decisions)
    assert 0 < decisions[-1].reset_after <= 60
    assert (await limiter.hit("b")).allowed  # another token has its own count
    refusal = limiter.refusal(decisions[-1])
    assert refusal.retry_after is not None and refusal.retry_after >= 1


async def test_hits_start_no_threads(monkeypatch):
    # limits' own MemoryStorage starts a Timer thread 10 ms after a change when none runs.
    limiter = RequestRateLimiter("1000000/minute")
    started: list[threading.Thread] = []
    real_start = threading.Thread.start

    def counted_start(thread: threading.Thread) -> None:
        started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted_start)
    for _ in range(5):
        for i in range(50):
            await limiter.hit(f"token-{i}")
        await trio.sleep(0.02)  # long enough for a 10 ms timer to have ended and be restarted
    assert started == []


async def test_expired_counters_are_swept():
    limiter = RequestRateLimiter("5/second")
    for i in range(20):
        await limiter.hit(f"token-{i}")
    storage = limiter._storage
    assert len(storage.storage) >= 20
    await trio.sleep(2.1)  # both the window and the one before it have passed
    limiter._next_sweep = 0  # the next hit sweeps (at most once a window otherwise)
    await limiter.hit("late")
    assert set(storage.storage) == {k for k in storage.storage if "late" in k}
