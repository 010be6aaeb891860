"""The JSON Schemas of the API's response bodies, generated from the views' declarations
(`views.py`), and the helpers the document's hand-written parts share."""

from __future__ import annotations

from typing import Any

from conversation_service.entrypoints.http import views
from conversation_service.entrypoints.http.json_schema import TIMESTAMP, Schema, Schemas, Shape

UUID: Schema = {"type": "string", "format": "uuid"}
COUNT: Schema = {"type": "integer", "minimum": 0}
ECHO_MODEL_ID = "6563686f-0000-4000-8000-000000000000"  # always registered (README)
EXAMPLE_ID = "5a7e8f91-2b3c-4d5e-8f70-8a9b0c1d2e3f"

# Component name -> what the views render under it.
COMPONENTS: dict[str, Shape | type] = {
    "Usage": views.USAGE,
    "Conversation": views.CONVERSATION,
    "ChatSession": views.SESSION,
    "ConversationWithSessions": views.WITH_SESSIONS,
    "Message": views.MESSAGE,
    "ConversationPage": views.CONVERSATION_PAGE,
    "MessagePage": views.MESSAGE_PAGE,
    "Model": views.MODEL,
    "ModelList": views.ModelList,
    "ModelUsage": views.MODEL_USAGE,
    "Cancelled": views.Cancelled,
    "Feedback": views.FEEDBACK,
    "FeedbackCounts": views.FeedbackCounts,
    "FeedbackCleared": views.FeedbackCleared,
    "ConversationDeleted": views.ConversationDeleted,
    "ImportReport": views.Imported,
    "SearchPage": views.SEARCH_PAGE,
    "SearchResult": views.SEARCH_RESULT,
    "Snippet": views.SNIPPET,
    "SnippetPart": views.SNIPPET_PART,
}


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
    """Response bodies: those the views declare, and the few the handlers put together."""
    # A class is a reference wherever it appears only when its component is the shape the
    # views render it in.
    refs = {
        shape.kind: name
        for name, shape in COMPONENTS.items()
        if isinstance(shape, Shape) and views.SHAPE_OF.get(shape.kind) is shape
    }
    schemas = Schemas(refs, shapes=views.SHAPE_OF)
    tokens = {name: COUNT for name in ("prompt_tokens", "completion_tokens", "total_tokens")}
    return {
        **{name: schemas.response(shape) for name, shape in COMPONENTS.items()},
        "UsageReport": obj(
            {
                "from": TIMESTAMP,
                "to": TIMESTAMP,
                "models": {"type": "array", "items": ref("ModelUsage")},
                "total": obj({"replies": COUNT, **tokens, "feedback": ref("FeedbackCounts")}),
            }
        ),
        "Health": obj({"status": {"const": "ok"}}),
        "Error": obj({"error": _error()}),
    }


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
