"""A stored reply turned back into its events, for clients re-attaching after it ended.

Event ids are positions in the reply text (see reply_log), so the stored text alone is
enough to continue after any id a client saw live: the rest of the text comes as one chunk.
"""

from __future__ import annotations

from uuid import UUID

from conversation_service.adapters.actors.reply_log import ReplyLog
from conversation_service.domain.model import Message, MessageStatus

_ERRORS = {
    MessageStatus.FAILED: ("reply_failed", "the model could not finish this reply"),
    MessageStatus.INCOMPLETE: ("interrupted", "the service stopped while writing this reply"),
    MessageStatus.IN_PROGRESS: ("interrupted", "this reply is no longer being written"),
}


def replay_stored(message: Message, *, user_message_id: UUID | None, after: int | None) -> ReplyLog:
    """A finished ReplyLog of the stored reply; follow it `after` an id to continue there."""
    log = ReplyLog(
        message_id=message.id,
        user_message_id=user_message_id,
        chat_session_id=message.chat_session_id,
    )
    log.start(message.model_id)
    # The text before `after` was seen already: the rest comes as one chunk whose id is the
    # stored text's length, as the last live chunk's was.
    seen = min(max(after or 0, 0), len(message.content))
    log.skip_text(seen)
    log.content(message.content[seen:])
    error = _ERRORS.get(message.status)
    if error is not None:
        if message.error_code:
            error = (message.error_code, message.error_message or error[1])
        log.error(*error)
        log.end("error", message.usage)
    elif message.status is MessageStatus.CANCELLED:
        log.end("cancelled", message.usage)
    else:
        log.end(message.finish_reason or "stop", message.usage)
    return log
