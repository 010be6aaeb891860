"""A finished reply read back from storage, followed like a live one."""

from __future__ import annotations

from collections.abc import Sequence

from conversation_service.domain.replies import ReplyEvent


class StoredReplyStream:
    """A ReplyStream over events known in full: one batch, then the end."""

    def __init__(self, events: Sequence[ReplyEvent]) -> None:
        self._events: Sequence[ReplyEvent] | None = events

    async def next_batch(self) -> Sequence[ReplyEvent]:
        return self.ready_batch()

    def ready_batch(self) -> Sequence[ReplyEvent]:
        events, self._events = self._events, ()
        return events or ()
