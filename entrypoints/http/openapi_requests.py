"""The JSON Schemas of the API's request bodies, for the OpenAPI document.

Limits come in as arguments (the running settings), so the document says what this server
enforces. The bodies mirror `inputs.py`, the domain's rules and, for a model an organisation
registers, `adapters/llm/registry_entry.py`.
"""

from __future__ import annotations

import functools

import attrs

from conversation_service.adapters.llm.registry_entry import PROVIDERS
from conversation_service.adapters.llm.upstream import Timeouts
from conversation_service.domain.rules import InputLimits
from conversation_service.entrypoints.http.openapi_schemas import (
    COUNT,
    ECHO_MODEL_ID,
    EXAMPLE_ID,
    UUID,
    Schema,
    nullable,
    obj,
    ref,
)

MAX_API_KEY_CHARS = 4096  # adapters/org_models.py


@functools.cache
def _whitespace() -> str:
    """What Python's `str.strip()` removes, as the inside of a regex character class."""
    runs: list[tuple[int, int]] = []
    for code in (code for code in range(0x110000) if chr(code).isspace()):
        if runs and runs[-1][1] == code - 1:
            runs[-1] = (runs[-1][0], code)
        else:
            runs.append((code, code))
    return "".join(f"\\u{lo:04x}" if lo == hi else f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in runs)


def text_pattern() -> str:
    """Some character that is not whitespace, and no NUL anywhere (domain/rules.py `_text`).

    The class lists exactly what `str.strip()` removes, so every regex engine (Python,
    ECMA-262, Rust) agrees with the server on which texts count as empty.
    """
    return f"^[^\\u0000]*[^\\u0000{_whitespace()}][^\\u0000]*$"


def _not_blank(description: str) -> Schema:
    return {"type": "string", "pattern": f"[^{_whitespace()}]", "description": description}


def text(max_chars: int, what: str) -> Schema:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_chars,
        "pattern": text_pattern(),
        "description": f"{what}: 1 to {max_chars} characters, not only whitespace, no NUL.",
    }


def request_bodies(limits: InputLimits) -> dict[str, Schema]:
    """Request bodies (`inputs.py`); unknown fields are 400."""
    number_or_null = {"type": ["number", "null"]}
    params = obj(
        {
            "temperature": {**number_or_null, "minimum": 0, "maximum": 2},
            "max_tokens": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "At most the model's `max_output_tokens` (GET /api/models).",
            },
            "top_p": {**number_or_null, "exclusiveMinimum": 0, "maximum": 1},
        },
        required=[],
        description="Sampling settings; absent or null leaves one to the model.",
    )
    return {
        "CreateConversation": obj(
            {
                "title": text(limits.max_title_chars, "The conversation's title"),
                "is_archived": {"type": "boolean", "default": False},
            },
            required=["title"],
            examples=[{"title": "Project Discussion", "is_archived": False}],
        ),
        "CreateSession": obj(
            {
                "conversation_id": UUID,
                "model_id": {**UUID, "description": "One of GET /api/models."},
                "system_prompt": {
                    "oneOf": [
                        text(limits.max_system_prompt_chars, "Instructions for the model"),
                        {"type": "null"},
                    ]
                },
                "params": {"oneOf": [ref("GenerationParams"), {"type": "null"}]},
                "context": {
                    "type": "string",
                    "enum": ["session", "conversation"],
                    "default": "session",
                    "description": "What the model is shown: this session's messages, or "
                    "every earlier message of the conversation.",
                },
            },
            required=["conversation_id", "model_id"],
            examples=[{"conversation_id": EXAMPLE_ID, "model_id": ECHO_MODEL_ID}],
        ),
        "GenerationParams": params,
        "StreamChat": obj(
            {
                "chat_session_id": UUID,
                "message": text(limits.max_message_chars, "The user's message"),
                "multitask": {
                    "type": "string",
                    "enum": ["enqueue", "reject", "interrupt"],
                    "default": "enqueue",
                    "description": "What to do while the session is still replying: `enqueue` "
                    "waits its turn, `reject` answers 409, `interrupt` cancels the running reply.",
                },
            },
            required=["chat_session_id", "message"],
            examples=[
                {
                    "chat_session_id": EXAMPLE_ID,
                    "message": "Can you explain how vector databases work?",
                }
            ],
            description="The message must also fit the model's context window with the "
            "session's system prompt (400 naming `message` otherwise).",
        ),
        "CancelReply": obj(
            {
                "chat_session_id": UUID,
                "message_id": {
                    **nullable(UUID),
                    "description": "Cancel this reply only (running or queued); omit for any.",
                },
            },
            required=["chat_session_id"],
            examples=[{"chat_session_id": EXAMPLE_ID}],
        ),
        "CompleteSession": obj(
            {"chat_session_id": UUID}, examples=[{"chat_session_id": EXAMPLE_ID}]
        ),
        "RegisterModel": register_model(),
    }


def register_model() -> Schema:
    """A model an organisation registers (`registry_entry.parse_model_entry`)."""
    seconds = {"type": "number", "exclusiveMinimum": 0, "description": "Seconds."}
    timeouts = {f"{field.name}_timeout": seconds for field in attrs.fields(Timeouts)}
    tokens = {"type": "integer", "minimum": 1}
    schema = obj(
        {
            "name": {**_not_blank("What clients see; not `echo`."), "not": {"const": "echo"}},
            "provider": {"type": "string", "enum": sorted(PROVIDERS)},
            "base_url": {
                "type": "string",
                "format": "uri",
                "pattern": "^https?://[^/?#@]+([/?#].*)?$",
                "description": "http(s), no credentials, a public host unless the server "
                "allows private ones; optional for `anthropic`.",
            },
            "upstream_model": _not_blank("The provider's name for the model."),
            "api_key": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_API_KEY_CHARS,
                "description": "Stored encrypted, never shown again.",
            },
            "api_key_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            **timeouts,
            "context_window": {**tokens, "description": "Tokens, prompt and reply together."},
            "max_output_tokens": {**tokens, "description": "At most `context_window`."},
            "default_max_tokens": {
                **tokens,
                "description": "`anthropic` only; at most `max_output_tokens`.",
            },
            "max_retries": COUNT,
            "max_retry_wait": {"type": "number", "minimum": 0, "description": "Seconds."},
        },
        required=["name", "provider", "upstream_model"],
        examples=[
            {
                "name": "llama-3.1-8b",
                "provider": "vllm",
                # vLLM's default address; only a server that allows private URLs takes it,
                # and an example never makes anyone's server call out to a public host.
                "base_url": "http://127.0.0.1:8000/v1",
                "upstream_model": "meta-llama/Llama-3.1-8B-Instruct",
                "api_key": "sk-...",
            }
        ],
        description="The model is offered to this organisation only; admin tokens only.",
    )
    anthropic = {"properties": {"provider": {"const": "anthropic"}}}
    # What JSON Schema can say of the rules between fields; not that max_output_tokens is at
    # most context_window (8192 unless given), nor default_max_tokens at most max_output_tokens.
    schema["allOf"] = [
        {"anyOf": [{"required": ["base_url"]}, anthropic]},
        {"anyOf": [{"not": {"required": ["default_max_tokens"]}}, anthropic]},
    ]
    return schema
