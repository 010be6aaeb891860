"""A reply written by another instance, followed through the database.

Its events are read back from the reply's row: event ids are offsets into the reply's text,
so the text stored so far gives every event after any id, exactly once, whatever chunks the
writing instance sent. The writer says when the row changed (a notification); a follower also
looks every `POLL_EVERY` seconds, so a lost notification delays an event, never loses it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import attrs
import trio

from conversation_service.domain.model import Message, MessageStatus
from conversation_service.domain.replies import (
    ReplyContent,
    ReplyEvent,
    ReplyOutcome,
    ReplyStarted,
    closing_events,
    stored_outcome,
)
from conversation_service.ports.storage import ConversationStore

POLL_EVERY = 1.0

# What the running instance says of a reply it accepted but never began (it was cancelled,
# its model removed, the service stopped): JSON {"finish_reason", "error": [code, message]}.
DroppedLookup = Callable[[], Awaitable[dict[str, Any] | None]]


@attrs.define(eq=False)
class RemoteReply:
    """A LiveReply whose writer is another instance."""

    message_id: UUID
    user_message_id: UUID | None
    chat_session_id: UUID
    org_id: UUID
    model_id: UUID | None
    store: ConversationStore
    wait_change: Callable[[UUID], Awaitable[None]]
    dropped: DroppedLookup | None = None

    @property
    def last_event_id(self) -> int | None:
        return None  # known once read: a follower finds it

    def follow(self, after: int | None = None) -> RemoteFollower:
        return RemoteFollower(self, after)


class RemoteFollower:
    """One reader's position in a reply another instance writes."""

    def __init__(self, reply: RemoteReply, after: int | None) -> None:
        self._reply = reply
        self._after = -1 if after is None else after
        self._ended = False

    def ready_batch(self) -> list[ReplyEvent] | None:
        return [] if self._ended else None  # read from the store: always a wait

    async def next_batch(self) -> list[ReplyEvent]:
        reply = self._reply
        while not self._ended:
            stored = await reply.store.get_message(reply.org_id, reply.message_id)
            events = self._events(stored) if stored is not None else await self._missing()
            events = [event for event in events if event.id > self._after]
            if events:
                self._after = events[-1].id
                return events
            if not self._ended:
                with trio.move_on_after(POLL_EVERY):
                    await reply.wait_change(reply.message_id)
        return []

    def _events(self, stored: Message) -> list[ReplyEvent]:
        reply = self._reply
        events: list[ReplyEvent] = [
            ReplyStarted(
                message_id=reply.message_id,
                # A regenerate's asker does not know it; the row does.
                user_message_id=reply.user_message_id or stored.parent_id,
                chat_session_id=reply.chat_session_id,
                model_id=stored.model_id,
            )
        ]
        length = len(stored.content)
        seen = min(max(self._after, 0), length)
        if seen < length:
            text = stored.content[seen:]
            events.append(ReplyContent(id=length, message_id=reply.message_id, text=text))
        if stored.status is not MessageStatus.IN_PROGRESS:
            self._ended = True
            events.extend(closing_events(reply.message_id, length, stored_outcome(stored)))
        return events

    async def _missing(self) -> list[ReplyEvent]:
        """The end of a reply with no row: one that never began, if its writer said it was
        dropped, or one whose conversation was deleted (it was cancelled first)."""
        reply = self._reply
        said = await reply.dropped() if reply.dropped is not None else None
        if said is not None:
            return self._dropped(said)
        if await reply.store.get_session(reply.org_id, reply.chat_session_id) is not None:
            return []  # waiting its turn: no row yet
        self._ended = True
        seen = max(self._after, 0)  # an event's id is the length of the text before it
        return list(closing_events(reply.message_id, seen, ReplyOutcome.cancelled()))

    def _dropped(self, said: dict[str, Any]) -> list[ReplyEvent]:
        self._ended = True
        error = said.get("error")
        outcome = ReplyOutcome(
            status=MessageStatus(said.get("status", MessageStatus.CANCELLED.value)),
            finish_reason=str(said["finish_reason"]),
            error=None if error is None else (str(error[0]), str(error[1])),
        )
        # As a reply dropped before it began ends on the writing instance: no start, no text.
        return list(closing_events(self._reply.message_id, 0, outcome))


def dropped_outcome(outcome: ReplyOutcome) -> dict[str, Any]:
    """What the writing instance records (as JSON) of a reply it dropped before it began."""
    error = None if outcome.error is None else list(outcome.error)
    return {"finish_reason": outcome.finish_reason, "status": outcome.status.value, "error": error}
