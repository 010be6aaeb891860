"""The JSON Schemas of the API's request bodies, generated from the classes the server
structures them into (`request_bodies.py`) with the running limits; here only what is not a
field's: the component names, examples, and the rules between a model entry's fields."""

from __future__ import annotations

from conversation_service.domain.rules import InputLimits
from conversation_service.entrypoints.http.json_schema import Schema, Schemas
from conversation_service.entrypoints.http.openapi_schemas import ECHO_MODEL_ID, EXAMPLE_ID
from conversation_service.entrypoints.http.request_bodies import (
    ClearFeedback,
    CompleteSession,
    CreateConversation,
    CreateSession,
    DeleteConversation,
    EditMessage,
    GiveFeedback,
    RegenerateReply,
    RegisterModel,
    SelectBranch,
    SessionParams,
    SessionRef,
    StreamChat,
    UpdateConversation,
)

BODIES: dict[str, type] = {
    "CreateConversation": CreateConversation,
    "CreateSession": CreateSession,
    "GenerationParams": SessionParams,
    "StreamChat": StreamChat,
    "CancelReply": SessionRef,
    "CompleteSession": CompleteSession,
    "RegenerateReply": RegenerateReply,
    "EditMessage": EditMessage,
    "SelectBranch": SelectBranch,
    "RegisterModel": RegisterModel,
    "UpdateConversation": UpdateConversation,
    "DeleteConversation": DeleteConversation,
    "GiveFeedback": GiveFeedback,
    "ClearFeedback": ClearFeedback,
}
SESSION = {"chat_session_id": EXAMPLE_ID}
EXAMPLES = {
    "CreateConversation": {"title": "Project Discussion", "is_archived": False},
    "CreateSession": {"conversation_id": EXAMPLE_ID, "model_id": ECHO_MODEL_ID},
    "StreamChat": {**SESSION, "message": "Can you explain how vector databases work?"},
    "CancelReply": SESSION,
    "CompleteSession": SESSION,
    "UpdateConversation": {"conversation_id": EXAMPLE_ID, "title": "Vector databases"},
    "DeleteConversation": {"conversation_id": EXAMPLE_ID},
    "GiveFeedback": {"message_id": EXAMPLE_ID, "rating": "up", "comment": "Clear and short."},
    "ClearFeedback": {"message_id": EXAMPLE_ID},
    "RegenerateReply": SESSION,
    "EditMessage": {**SESSION, "message_id": EXAMPLE_ID, "content": "And how are they indexed?"},
    "SelectBranch": {**SESSION, "message_id": EXAMPLE_ID},
    "RegisterModel": {
        "name": "llama-3.1-8b",
        "provider": "vllm",
        # vLLM's default address; only a server that allows private URLs takes it, and an
        # example never makes anyone's server call out to a public host.
        "base_url": "http://127.0.0.1:8000/v1",
        "upstream_model": "meta-llama/Llama-3.1-8B-Instruct",
        "api_key": "sk-...",
    },
}


def request_bodies(limits: InputLimits) -> dict[str, Schema]:
    """Request bodies; unknown fields are 400."""
    schemas = Schemas({kind: name for name, kind in BODIES.items()}, limits=limits)
    bodies = {
        name: schemas.request(kind, **({"examples": [EXAMPLES[name]]} if name in EXAMPLES else {}))
        for name, kind in BODIES.items()
    }
    anthropic = {"properties": {"provider": {"const": "anthropic"}}}
    # What JSON Schema can say of the rules between fields; not that max_output_tokens is at
    # most context_window, nor default_max_tokens at most max_output_tokens (their
    # descriptions say it).
    bodies["RegisterModel"]["allOf"] = [
        {"anyOf": [{"required": ["base_url"]}, anthropic]},
        {"anyOf": [{"not": {"required": ["default_max_tokens"]}}, anthropic]},
    ]
    return bodies
