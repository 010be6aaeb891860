"""The JSON Schemas of the API's response bodies (`views.py`), and the helpers all share."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

UUID: Schema = {"type": "string", "format": "uuid"}
TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "description": "UTC, with microseconds and a Z, e.g. 2026-11-26T06:02:59.123456Z",
}
COUNT: Schema = {"type": "integer", "minimum": 0}
ECHO_MODEL_ID = "6563686f-0000-4000-8000-000000000000"  # always registered (README)
EXAMPLE_ID = "5a7e8f91-2b3c-4d5e-8f70-8a9b0c1d2e3f"
FINISH_REASONS = (
    "Why the reply ended: `stop` (complete), `length` (the model's token cap), `cancelled`, "
    "`error` (see the stream's `error` event, and the message's `error`; a reply the service "
    "stopped or lost is stored `incomplete` with this reason), or another value a provider "
    "reports."
)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def obj(
    properties: dict[str, Schema], *, required: list[str] | None = None, **extra: Any
) -> Schema:
    """A closed object: every property listed (and required unless said), none other allowed."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        **extra,
    }


def response_bodies() -> dict[str, Schema]:
    """Response bodies (`views.py`)."""
    conversation = {
        "id": UUID,
        "title": {"type": "string"},
        "is_archived": {"type": "boolean"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
    tokens = {"prompt_tokens": COUNT, "completion_tokens": COUNT, "total_tokens": COUNT}
    return {
        "Usage": obj(
            {
                **tokens,
                "estimated": {
                    "type": "boolean",
                    "description": "Counted by this service (one token per four characters).",
                },
            }
        ),
        "Conversation": obj(conversation),
        "ChatSession": obj(
            {
                "id": UUID,
                "conversation_id": UUID,
                "model_id": UUID,
                "status": {"type": "string", "enum": ["active", "responding", "completed"]},
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
                "system_prompt": {"type": ["string", "null"]},
                "params": obj(
                    {
                        "temperature": {"type": ["number", "null"]},
                        "max_tokens": {"type": ["integer", "null"]},
                        "top_p": {"type": ["number", "null"]},
                    }
                ),
                "context": {"type": "string", "enum": ["session", "conversation"]},
            }
        ),
        "ConversationWithSessions": obj(
            {**conversation, "sessions": {"type": "array", "items": ref("ChatSession")}}
        ),
        "Message": obj(
            {
                "id": UUID,
                "conversation_id": UUID,
                "chat_session_id": UUID,
                "role": {"type": "string", "enum": ["user", "assistant"]},
                "content": {"type": "string"},
                "status": {
                    "type": "string",
                    "enum": ["completed", "in_progress", "failed", "cancelled", "incomplete"],
                },
                "model_id": {**nullable(UUID), "description": "null for the user's messages."},
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
                "finish_reason": {"type": ["string", "null"], "description": FINISH_REASONS},
                "usage": nullable(ref("Usage")),
                "latency": nullable(
                    obj({"first_token_ms": {"type": ["integer", "null"]}, "total_ms": COUNT})
                ),
                "error": nullable(obj({"code": {"type": "string"}, "message": {"type": "string"}})),
            }
        ),
        "ConversationPage": _page("conversations", "Conversation"),
        "MessagePage": _page("messages", "Message"),
        "Model": obj(
            {
                "id": UUID,
                "name": {"type": "string"},
                "provider": {"type": "string"},
                "context_window": {**COUNT, "description": "Tokens it reads, prompt and reply."},
                "max_output_tokens": {**COUNT, "description": "Tokens it writes at most."},
                "scope": {"type": "string", "description": "`global`, or `org`: this org's own."},
            }
        ),
        "ModelList": obj({"models": {"type": "array", "items": ref("Model")}}),
        "UsageReport": obj(
            {
                "from": TIMESTAMP,
                "to": TIMESTAMP,
                "models": {
                    "type": "array",
                    "items": obj(
                        {
                            "model_id": UUID,
                            "name": {"type": ["string", "null"], "description": "null: gone."},
                            "replies": COUNT,
                            **tokens,
                            "estimated_replies": COUNT,
                        }
                    ),
                },
                "total": obj({"replies": COUNT, **tokens}),
            }
        ),
        "Cancelled": obj(
            {
                "chat_session_id": UUID,
                "cancelled": {
                    "type": "boolean",
                    "description": "Whether a reply was running or waiting and was stopped "
                    "(false: nothing to stop).",
                },
            }
        ),
        "Health": obj({"status": {"const": "ok"}}),
        "Error": obj({"error": _error()}),
    }


def _page(key: str, item: str) -> Schema:
    return obj(
        {
            key: {"type": "array", "items": ref(item)},
            "limit": {"type": "integer", "minimum": 1},
            "offset": COUNT,
            "has_more": {"type": "boolean"},
        }
    )


def _error() -> Schema:
    return obj(
        {
            "code": {
                "type": "string",
                "description": "Stable, for programs: invalid_field, unauthenticated, forbidden, "
                "not_found, session_completed, session_busy, invalid_transition, rate_limited, "
                "unavailable, storage_unavailable, payload_too_large, internal_error, ...",
            },
            "message": {"type": "string", "description": "For people."},
            "request_id": {"type": "string", "description": "As in X-Request-Id and the log."},
            "field": {"type": "string", "description": "The input at fault (400 only)."},
        },
        required=["code", "message", "request_id"],
    )
