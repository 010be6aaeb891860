"""The events of one reply, kept in order, read by any number of followers.

Each follower keeps its own cursor into the one shared log instead of owning a buffer, so a
reader that stops reading costs nothing and never slows the others; the log itself is bounded
by the reply it describes. Event ids are positions: `start` is 0, each `content` event's id is
the length of the reply text once that chunk is added, `error` is that length + 1 and `end`
that length + 2. Ids therefore grow strictly within a message, and a reply stored in the
database can be replayed after any id without the original chunk boundaries.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import attrs
import trio

from conversation_service.domain.model import Usage


@attrs.frozen(kw_only=True)
class ReplyEvent:
    """One server-sent event of a reply."""

    id: int
    kind: str  # start | content | error | end
    data: dict[str, Any]


def usage_view(usage: Usage | None) -> dict[str, Any] | None:
    """A reply's usage as its `end` event and the messages API show it."""
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "estimated": usage.estimated,
    }


class ReplyLog:
    """An append-only log of a reply's events; closed after `end`."""

    def __init__(
        self, *, message_id: UUID, user_message_id: UUID | None, chat_session_id: UUID
    ) -> None:
        self.message_id = message_id
        self.user_message_id = user_message_id
        self.chat_session_id = chat_session_id
        self.events: list[ReplyEvent] = []
        self.text_length = 0
        self._changed = trio.Event()
        self._ended = trio.Event()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    def start(
        self, model_id: UUID | None, *, included: int | None = None, trimmed: int | None = None
    ) -> None:
        """The reply begins; `included`/`trimmed`: messages in the model's context, and
        older ones left out to fit it (known while the reply is live, not in storage)."""
        data: dict[str, Any] = {
            "message_id": str(self.message_id),
            "user_message_id": None if self.user_message_id is None else str(self.user_message_id),
            "chat_session_id": str(self.chat_session_id),
            "model_id": None if model_id is None else str(model_id),
        }
        if included is not None:
            data["context_messages"] = included
            data["trimmed_messages"] = trimmed
        self._append(ReplyEvent(id=0, kind="start", data=data))

    def skip_text(self, length: int) -> None:
        """Count `length` characters as sent already (a stored reply replayed after an id)."""
        self.text_length += length

    def content(self, text: str) -> None:
        if not text:
            return  # an empty chunk would repeat the previous id
        self.text_length += len(text)
        self._append(
            ReplyEvent(
                id=self.text_length,
                kind="content",
                data={"message_id": str(self.message_id), "content": text},
            )
        )

    def error(self, code: str, message: str) -> None:
        self._append(
            ReplyEvent(
                id=self.text_length + 1, kind="error", data={"code": code, "message": message}
            )
        )

    def end(self, finish_reason: str, usage: Usage | None = None) -> None:
        data = {
            "message_id": str(self.message_id),
            "finish_reason": finish_reason,
            "usage": usage_view(usage),
        }
        self._append(ReplyEvent(id=self.text_length + 2, kind="end", data=data))
        self._ended.set()

    def fail(self, code: str, message: str) -> None:
        """An `error` event, then `end` with finish_reason "error"."""
        self.error(code, message)
        self.end("error")

    def _append(self, event: ReplyEvent) -> None:
        if self._ended.is_set():
            raise RuntimeError("reply already ended")
        self.events.append(event)
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    def follow(self, after: int | None = None) -> ReplyFollower:
        """A reader of every event whose id is greater than `after` (all when None)."""
        return ReplyFollower(self, after)


class ReplyFollower:
    """One reader's position in a ReplyLog."""

    def __init__(self, log: ReplyLog, after: int | None) -> None:
        self._log = log
        self._cursor = 0
        if after is not None:
            while self._cursor < len(log.events) and log.events[self._cursor].id <= after:
                self._cursor += 1

    async def next_batch(self) -> list[ReplyEvent]:
        """Every event not yet read, waiting for one; [] once the reply ended and all was read."""
        log = self._log
        while self._cursor >= len(log.events):
            if log.ended:
                return []
            await log._changed.wait()
        batch = log.events[self._cursor :]
        self._cursor = len(log.events)
        return batch
