"""The live side of chat sessions: what the use cases ask of whatever runs them.

The service's adapter runs one actor per live session (adapters/actors); the use cases see
only this port, so they never touch a session's live state themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from conversation_service.domain.branches import TurnRequest
from conversation_service.domain.model import ChatSession
from conversation_service.domain.replies import Multitask, ReplyEvent


class ReplyStream(Protocol):
    """One reader's position in a reply's events."""

    async def next_batch(self) -> Sequence[ReplyEvent]:
        """Every event not read yet, waiting for one; empty once the reply has ended and
        everything was read."""
        ...

    def ready_batch(self) -> Sequence[ReplyEvent] | None:
        """What `next_batch` would return without waiting; None when it would wait. (A
        reader that bounds its waits need not set up a timeout when events are ready.)"""
        ...


class LiveReply(Protocol):
    """A reply the runtime accepted: running, waiting its turn, or just finished."""

    @property
    def message_id(self) -> UUID: ...

    @property
    def user_message_id(self) -> UUID | None: ...

    @property
    def chat_session_id(self) -> UUID: ...

    @property
    def last_event_id(self) -> int | None:
        """The id of the reply's `end` once it has ended; None while it runs or waits."""
        ...

    def follow(self, after: int | None = None) -> ReplyStream:
        """A reader of every event whose id is greater than `after` (all when None)."""
        ...


class SessionRuntime(Protocol):
    """Runs chat sessions' replies, one at a time per session, and owns their live state."""

    async def send(
        self,
        session: ChatSession,
        request: TurnRequest,
        *,
        multitask: Multitask,
        message_id: UUID,
        user_message_id: UUID | None,
    ) -> LiveReply:
        """Accept a turn for the session (a new user message, a regenerate or an edit); its
        reply's events appear on the result. `user_message_id` is the new user message's (None
        for a regenerate: its reply answers a stored one).

        Raises when the session refuses it: SessionCompleted, SessionBusy (with REJECT),
        RateLimited (too many waiting), ModelUnavailable, Unavailable (stopping); for a
        branch begun at once, what domain.branches refuses (MessageNotFound,
        NotOnCurrentBranch, ReplyInProgress, NothingToRegenerate, InvalidField). A queued
        one checked when its turn comes ends with `error` and `end` instead.
        """
        ...

    async def select_branch(self, session: ChatSession, message_id: UUID) -> ChatSession:
        """Make the branch through `message_id` the session's current one: its head the
        newest leaf below the message. SessionBusy while the session replies or has turns
        waiting; MessageNotFound for a message not of this session."""
        ...

    async def cancel(self, session: ChatSession, message_id: UUID | None) -> bool:
        """Stop the session's running reply (or the one named, running or waiting); True if
        one was stopped."""
        ...

    async def complete(self, session: ChatSession) -> ChatSession:
        """Close the session for new messages, stopping (as cancelled) what it is writing."""
        ...

    async def retire(self, session: ChatSession) -> None:
        """Stop the session for good, before it is deleted: its running reply is cancelled
        (the model's request closed) and stored so, replies waiting their turn end cancelled,
        and from now on the runtime holds nothing of it and takes no message for it
        (SessionNotFound), wherever it ran. Returns once nothing of the session runs."""
        ...

    async def forget(self, org_id: UUID, session_ids: Sequence[UUID]) -> None:
        """The sessions' rows are deleted: stop any of them still running (one made while
        the others were retired) and drop whatever the runtime kept of them elsewhere (with
        several instances: their leases and the commands sent for them)."""
        ...

    def live_session(self, session_id: UUID) -> ChatSession | None:
        """The session's live state, if the runtime holds it (else storage has the truth)."""
        ...

    async def find_reply(self, session: ChatSession, message_id: UUID) -> LiveReply | None:
        """A reply of the session that is being written (here, or by another instance) or
        waiting its turn; None once it has ended (storage has it then)."""
        ...
