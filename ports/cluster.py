"""The other instances of the service that share one database.

Any instance can receive any request. A chat session is run by one instance at a time, the
one holding its lease; a command for a session leased elsewhere is carried to that instance
and its answer carried back; a reply running elsewhere is followed through the database.
With one instance alone (SQLite, or the in-memory store) every lease is this instance's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

import attrs


@attrs.frozen(kw_only=True)
class SessionRequest:
    """A command for a session, carried to the instance that runs it."""

    id: UUID
    session_id: UUID
    org_id: UUID
    kind: str  # "send", "regenerate", "edit", "select_branch", "cancel", "complete" or "retire"
    body: Mapping[str, Any]  # JSON: what the command says (the text, the ids, the multitask)
    sender: str  # the instance that asked, where the answer goes


@attrs.frozen(kw_only=True)
class SessionAnswer:
    """What the running instance answered: a value, or an error the asker raises again."""

    value: Any = None  # JSON
    error: Mapping[str, Any] | None = None  # {"code", "message", "retry_after"?}
    moved: bool = False  # the session is no longer run there: ask again where it is now


class Cluster(Protocol):
    """Leases on sessions, commands between instances, and the news of replies."""

    @property
    def instance_id(self) -> str: ...

    @property
    def alone(self) -> bool:
        """True when no other instance can share the database (nothing is ever remote)."""
        ...

    async def claim(self, session_id: UUID, org_id: UUID) -> str:
        """The instance that runs the session from now: this one if the lease was free (or
        its holder gone), else the holder's id."""
        ...

    async def release(self, session_id: UUID) -> None:
        """Give the session's lease back (its actor retired)."""
        ...

    async def holder(self, session_id: UUID) -> str | None:
        """The live instance holding the session's lease, if one does; claims nothing."""
        ...

    async def forget(self, session_ids: Sequence[UUID]) -> None:
        """The sessions are deleted: drop their leases and the commands sent for them."""
        ...

    async def ask(self, owner: str, request: SessionRequest) -> SessionAnswer:
        """Carry `request` to instance `owner` and wait for its answer; Unavailable when none
        comes in time."""
        ...

    async def answer(self, request: SessionRequest, answer: SessionAnswer) -> None:
        """Answer `request` (again: a later answer replaces the first)."""
        ...

    async def answer_of(self, request_id: UUID) -> SessionAnswer | None:
        """The latest answer to a request, if it has one."""
        ...

    async def next_request(self) -> SessionRequest:
        """The next command another instance sent to this one (waits for one)."""
        ...

    async def reply_changed(self, message_id: UUID) -> None:
        """Tell every instance that a reply's stored text or state changed."""
        ...

    async def wait_reply_change(self, message_id: UUID) -> None:
        """Return when `reply_changed` is said of the reply (the caller bounds the wait)."""
        ...

    async def orphans(self) -> Sequence[tuple[UUID, UUID]]:
        """(org_id, session_id) of sessions whose instance is gone while they were leased
        or replying: another instance must take them over."""
        ...

    async def models_changed(self) -> None:
        """Tell every instance that an organisation's models changed."""
        ...
