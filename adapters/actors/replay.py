"""A stored reply turned back into its events, for clients re-attaching after it ended.

Event ids are positions in the reply text (see reply_log), so the stored text alone is
enough to continue after any id a client saw live: the rest of the text comes as one chunk.
"""

from __future__ import annotations

from uuid import UUID

from adapters.actors.reply_log import ReplyEvent, ReplyLog
from adapters.actors.reply_writer import usage_view
from domain.model import Message, MessageStatus

_ERRORS = {
    MessageStatus.FAILED: ("reply_failed", "the model could not finish this reply"),
    MessageStatus.INCOMPLETE: ("interrupted", "the service stopped while writing this reply"),
    MessageStatus.IN_PROGRESS: ("interrupted", "this reply is no longer being written"),
}


def replay_stored(message: Message, *, user_message_id: UUID | None, after: int | None) -> ReplyLog:
    """A finished ReplyLog holding the stored reply's events after `after`."""
    log = ReplyLog(
        message_id=message.id,
        user_message_id=user_message_id or message.id,
        chat_session_id=message.chat_session_id,
    )
    text = message.content
    position = -1 if after is None else after
    events: list[ReplyEvent] = []
    if position < 0:
        events.append(
            ReplyEvent(
                id=0,
                kind="start",
                data={
                    "message_id": str(message.id),
                    "user_message_id": str(user_message_id) if user_message_id else None,
                    "chat_session_id": str(message.chat_session_id),
                    "model_id": str(message.model_id),
                },
            )
        )
    rest = text[max(position, 0) :]
    if rest:
        events.append(
            ReplyEvent(
                id=len(text), kind="content", data={"message_id": str(message.id), "content": rest}
            )
        )
    error = _ERRORS.get(message.status)
    finish_reason = message.finish_reason or "stop"
    if error is not None:
        code, why = error
        if message.error_code:
            code, why = message.error_code, message.error_message or why
        finish_reason = "error"
        events.append(
            ReplyEvent(id=len(text) + 1, kind="error", data={"code": code, "message": why})
        )
    elif message.status is MessageStatus.CANCELLED:
        finish_reason = "cancelled"
    events.append(
        ReplyEvent(
            id=len(text) + 2,
            kind="end",
            data={
                "message_id": str(message.id),
                "finish_reason": finish_reason,
                "usage": usage_view(message.usage),
            },
        )
    )
    log.load([e for e in events if after is None or e.id > after])
    return log
