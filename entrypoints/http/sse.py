"""Server-Sent Events framing (the WHATWG `text/event-stream` format)."""

from __future__ import annotations

import json

from conversation_service.adapters.actors.reply_log import ReplyEvent

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx and friends must not buffer the stream
}

KEEPALIVE = b": keep-alive\n\n"


def frame(event: ReplyEvent) -> bytes:
    # json.dumps escapes newlines, so the data always fits on one `data:` line.
    data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()
