"""Server-Sent Events framing (the WHATWG `text/event-stream` format) of a reply's events.

The domain's typed events become the API's JSON here, and nowhere else.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson

from conversation_service.domain.replies import (
    ReplyContent,
    ReplyEnd,
    ReplyError,
    ReplyEvent,
    ReplyStarted,
)
from conversation_service.entrypoints.http.views import usage_view

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx and friends must not buffer the stream
}

KEEPALIVE = b": keep-alive\n\n"


def event_data(event: ReplyEvent) -> tuple[str, dict[str, Any]]:
    """The event's SSE name and its `data` object."""
    match event:
        case ReplyContent():
            return "content", {"message_id": str(event.message_id), "content": event.text}
        case ReplyStarted():
            data: dict[str, Any] = {
                "message_id": str(event.message_id),
                "user_message_id": _id(event.user_message_id),
                "chat_session_id": str(event.chat_session_id),
                "model_id": _id(event.model_id),
            }
            if event.context_messages is not None:
                data["context_messages"] = event.context_messages
                data["trimmed_messages"] = event.trimmed_messages
            return "start", data
        case ReplyError():
            return "error", {"code": event.code, "message": event.message}
        case ReplyEnd():
            return "end", {
                "message_id": str(event.message_id),
                "finish_reason": event.finish_reason,
                "usage": usage_view(event.usage),
            }
    raise TypeError(f"not a reply event: {event!r}")


def frame(event: ReplyEvent) -> bytes:
    if type(event) is ReplyContent:  # nearly every event: framed without building a dict
        text = orjson.dumps(event.text)
        return b"id: %d\n%s%s}\n\n" % (event.id, _content_head(event.message_id.int), text)
    name, data = event_data(event)
    # JSON escapes newlines, so the data always fits on one `data:` line.
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, name.encode(), orjson.dumps(data))


@lru_cache(maxsize=4096)
def _content_head(message_id: int) -> bytes:
    """What every content event of a message repeats, made once (formatting a UUID is slow).
    Kept by the id's integer: a UUID's own hash is a Python call, made for every event."""
    return (
        b'event: content\ndata: {"message_id":"%s","content":' % str(UUID(int=message_id)).encode()
    )


def _id(value: object | None) -> str | None:
    return None if value is None else str(value)
