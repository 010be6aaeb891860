"""Stores that misbehave on purpose, wrapped around the in-memory store.

FaultyStore raises an unexpected error (as a bug would) from chosen calls about one session;
SlowStore makes every write take a while, so that commands race with the writes in flight.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import attrs
import trio

from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.domain.model import ChatSession, Message


class InjectedFault(RuntimeError):
    """Raised by FaultyStore; nothing in the service knows this error."""


def _session_of(args: tuple[Any, ...]) -> UUID | None:
    for arg in args:
        if isinstance(arg, ChatSession):
            return arg.id
        if isinstance(arg, Message):
            return arg.chat_session_id
    uuids = [arg for arg in args if isinstance(arg, UUID)]
    return uuids[-1] if uuids else None  # (org_id, session_id) calls name the session last


@attrs.define
class _Fault:
    method: str
    session_id: UUID
    skip: int  # calls let through first
    times: int  # calls that fail after those


class FaultyStore:
    """The in-memory store, except that chosen calls about one session raise InjectedFault."""

    def __init__(self, inner: InMemoryStore | None = None) -> None:
        self.inner = inner or InMemoryStore()
        self._faults: list[_Fault] = []
        self.raised: list[str] = []

    def fail(self, method: str, session_id: UUID, *, times: int = 1, skip: int = 0) -> None:
        self._faults.append(_Fault(method, session_id, skip, times))

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            session_id = _session_of(args)
            for fault in self._faults:
                if fault.method == name and fault.session_id == session_id and fault.times:
                    if fault.skip:
                        fault.skip -= 1
                        break
                    fault.times -= 1
                    self.raised.append(name)
                    raise InjectedFault(f"injected fault in {name}")
            return await target(*args, **kwargs)

        return call


_WRITES = {
    "add_session", "update_session", "add_message", "update_message", "begin_reply",
    "end_reply", "recover_session",
}  # fmt: skip


class SlowStore:
    """The in-memory store with every write taking `delay()` seconds before it happens."""

    def __init__(self, delay: Callable[[], float], inner: InMemoryStore | None = None) -> None:
        self.inner = inner or InMemoryStore()
        self._delay = delay

    @classmethod
    def seeded(cls, seed: int, most: float = 0.3) -> SlowStore:
        chance = random.Random(seed)
        return cls(lambda: chance.uniform(0, most))

    def __getattr__(self, name: str) -> Any:
        target: Callable[..., Awaitable[Any]] = getattr(self.inner, name)
        if name not in _WRITES:
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            await trio.sleep(self._delay())
            return await target(*args, **kwargs)

        return call
