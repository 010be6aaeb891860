"""The reply stream's Server-Sent Events, for the OpenAPI document.

An event is described as an SSE parser reads it, `{"event", "id", "data"}`, with `data` a
JSON text whose own schema is its `contentSchema` (how OpenAPI 3.2 describes event streams;
valid JSON Schema 2020-12, so valid in 3.1 too). The data shapes are those of
`adapters/actors/reply_writer.py`, `reply_log.py` and `replay.py`.
"""

from __future__ import annotations

from conversation_service.entrypoints.http.openapi_schemas import (
    COUNT,
    UUID,
    Schema,
    nullable,
    obj,
    ref,
)
from conversation_service.entrypoints.http.views import FINISH_REASONS

# kind -> (pattern of its id, what the id is)
IDS = {
    "start": ("^0$", "Always 0."),
    "content": ("^[1-9][0-9]*$", "The length of the reply text once this chunk is added."),
    "error": ("^[1-9][0-9]*$", "The reply text's length + 1."),
    "end": ("^[1-9][0-9]*$", "The reply text's length + 2."),
}

ID_SCHEME = (
    "Each event has an `id` that grows within one reply: `start` is 0, a `content` event's id "
    "is the length of the reply text once its chunk is added, `error` is that length + 1 and "
    "`end` that length + 2. Resume with GET /api/conversation/stream and the last id seen. "
    "`error` comes only after a failure, and is always followed by `end`; a queued reply "
    "cancelled before it started has `end` alone. Idle streams get a `: keep-alive` comment "
    "every {keepalive:g} s. Each event's `data` is one line of JSON."
)


def event_data() -> dict[str, Schema]:
    return {
        "StartEventData": obj(
            {
                "message_id": {**UUID, "description": "The reply (assistant message)."},
                "user_message_id": {
                    **nullable(UUID),
                    "description": "The user message it answers (a regenerated reply: the "
                    "one answered again, an edit's: the new version); null only when replayed "
                    "and gone.",
                },
                "chat_session_id": UUID,
                "model_id": UUID,
                "context_messages": {
                    **COUNT,
                    "description": "Messages the model is shown (absent on a replay).",
                },
                "trimmed_messages": {
                    **COUNT,
                    "description": "Older messages left out to fit the model's context.",
                },
            },
            required=["message_id", "user_message_id", "chat_session_id", "model_id"],
        ),
        "ContentEventData": obj({"message_id": UUID, "content": {"type": "string"}}),
        "ErrorEventData": obj(
            {
                "code": {
                    "type": "string",
                    "description": "e.g. upstream_unavailable, upstream_timeout, "
                    "storage_unavailable, shutting_down, reply_failed, interrupted.",
                },
                "message": {"type": "string"},
            }
        ),
        "EndEventData": obj(
            {
                "message_id": UUID,
                "finish_reason": {"type": "string", "description": FINISH_REASONS},
                "usage": {**nullable(ref("Usage")), "description": "null when not completed."},
            }
        ),
    }


def events() -> dict[str, Schema]:
    """One schema per event kind, their oneOf (`ReplyEvent`) and their data."""
    kinds = {
        f"{kind.capitalize()}Event": obj(
            {
                "event": {"const": kind},
                "id": {"type": "string", "pattern": pattern, "description": why},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": ref(f"{kind.capitalize()}EventData"),
                },
            }
        )
        for kind, (pattern, why) in IDS.items()
    }
    reply_event = {
        "oneOf": [ref(name) for name in kinds],
        "description": "One server-sent event of a reply, as an SSE parser reads it.",
    }
    return {**event_data(), **kinds, "ReplyEvent": reply_event}
