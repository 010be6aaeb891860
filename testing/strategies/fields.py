"""What each field of a request body takes, as far as refusing goes, and values it does not
take: the declarations the refused bodies of `refused.py` are made from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from hypothesis import strategies as st

from conversation_service.adapters.llm.registry_entry import PROVIDERS
from conversation_service.domain.replies import Multitask
from conversation_service.domain.rules import InputLimits
from conversation_service.entrypoints.http.request_bodies import MAX_API_KEY_CHARS
from conversation_service.testing.strategies.texts import (
    LIMITS,
    blank_texts,
    refused_texts,
    too_long,
)


@attrs.frozen(kw_only=True)
class Field:
    """What a body's field takes."""

    # text (not blank, no NUL, at most max_chars), label (not blank), key (1 to max_chars
    # characters), url (http or https, no credentials), id, bool, enum, number, integer, object
    kind: str
    required: bool = False
    nullable: bool = False
    max_chars: int = 0  # text
    choices: tuple[str, ...] = ()  # enum
    taken: tuple[str, ...] = ()  # values of its kind it refuses all the same
    minimum: float | None = None  # number, integer
    above: float | None = None
    maximum: float | None = None
    fields: Mapping[str, Field] = attrs.field(factory=dict)  # object


def _params(max_output_tokens: int | None) -> Field:
    return Field(
        kind="object",
        nullable=True,
        fields={
            "temperature": Field(kind="number", nullable=True, minimum=0, maximum=2),
            "top_p": Field(kind="number", nullable=True, above=0, maximum=1),
            "max_tokens": Field(
                kind="integer", nullable=True, minimum=1, maximum=max_output_tokens
            ),
        },
    )


def schemas(
    limits: InputLimits = LIMITS, max_output_tokens: int | None = None
) -> dict[str, dict[str, Field]]:
    """Each conversation route's body, as far as refusing goes."""
    session_ref = {"chat_session_id": Field(kind="id", required=True)}
    return {
        "create": {
            # Absent or null: the conversation is titled after its first reply.
            "title": Field(kind="text", nullable=True, max_chars=limits.max_title_chars),
            "is_archived": Field(kind="bool"),
        },
        "create_session": {
            "conversation_id": Field(kind="id", required=True),
            "model_id": Field(kind="id", required=True),
            "system_prompt": Field(
                kind="text", nullable=True, max_chars=limits.max_system_prompt_chars
            ),
            "params": _params(max_output_tokens),
            "context": Field(kind="enum", choices=("session", "conversation")),
        },
        "stream_chat": {
            **session_ref,
            "message": Field(kind="text", required=True, max_chars=limits.max_message_chars),
            "multitask": Field(kind="enum", choices=tuple(m.value for m in Multitask)),
        },
        "cancel": {**session_ref, "message_id": Field(kind="id", nullable=True)},
        "complete_session": session_ref,
        "update": {
            "conversation_id": Field(kind="id", required=True),
            "title": Field(kind="text", nullable=True, max_chars=limits.max_title_chars),
            "is_archived": Field(kind="bool", nullable=True),
        },
        "delete": {"conversation_id": Field(kind="id", required=True)},
        "feedback": {
            "message_id": Field(kind="id", required=True),
            "rating": Field(kind="enum", required=True, choices=("down", "up")),
            "comment": Field(kind="text", nullable=True, max_chars=limits.max_comment_chars),
        },
        "clear_feedback": {"message_id": Field(kind="id", required=True)},
        "regenerate": {
            **session_ref,
            "message_id": Field(kind="id", nullable=True),
            "multitask": Field(kind="enum", choices=tuple(m.value for m in Multitask)),
        },
        "edit": {
            **session_ref,
            "message_id": Field(kind="id", required=True),
            "content": Field(kind="text", required=True, max_chars=limits.max_message_chars),
            "multitask": Field(kind="enum", choices=tuple(m.value for m in Multitask)),
        },
        "select_branch": {**session_ref, "message_id": Field(kind="id", required=True)},
    }


def register_model_schema() -> dict[str, Field]:
    """POST /api/models' body, as far as refusing one field goes (default_max_tokens, for
    `anthropic` only and bounded by max_output_tokens, is left out)."""
    seconds = Field(kind="number", above=0)
    return {
        "name": Field(kind="label", required=True, taken=("echo",)),
        "provider": Field(kind="enum", required=True, choices=tuple(sorted(PROVIDERS))),
        "base_url": Field(kind="url"),
        "upstream_model": Field(kind="label", required=True),
        "api_key": Field(kind="key", nullable=True, max_chars=MAX_API_KEY_CHARS),
        "connect_timeout": seconds,
        "first_token_timeout": seconds,
        "idle_timeout": seconds,
        "total_timeout": seconds,
        "context_window": Field(kind="integer", minimum=1),
        "max_output_tokens": Field(kind="integer", minimum=1),
        "max_retries": Field(kind="integer", minimum=0),
        "max_retry_wait": Field(kind="number", minimum=0),
    }


def wrong_values(field: Field) -> st.SearchStrategy[Any]:
    """Values `field` does not take."""
    not_a_string = st.integers() | st.booleans() | st.lists(st.text(), max_size=2)
    kinds: dict[str, st.SearchStrategy[Any]] = {
        "text": not_a_string | refused_texts(field.max_chars),
        "label": not_a_string | blank_texts(),
        "key": not_a_string | st.just("") | too_long(field.max_chars),
        "url": not_a_string
        | st.sampled_from(["ftp://host/v1", "http://user:pw@host/v1", "not a url", "http://"]),
        "id": st.integers() | st.booleans() | _malformed_ids(),
        "bool": st.sampled_from(["true", "false", 1, 0, "yes", [], {}]),
        "enum": st.sampled_from([1, True, [], *(c.upper() for c in field.choices), "other"]),
        "number": st.sampled_from(["1", True, [], {}]),
        "integer": st.sampled_from(["1", True, 1.5, [], {}]),
        "object": st.sampled_from([1, "x", True, []]),
    }
    wrong = kinds[field.kind]
    if field.taken:
        wrong = wrong | st.sampled_from(field.taken)
    if not field.nullable:
        wrong = wrong | st.none()
    if field.kind in ("number", "integer"):
        wrong = wrong | _out_of_range(field)
    return wrong


def _malformed_ids() -> st.SearchStrategy[str]:
    forms = [
        lambda u: "{" + str(u) + "}",
        lambda u: f"urn:uuid:{u}",
        lambda u: u.hex,
        lambda u: str(u)[:-1],
        lambda u: f" {u}",
        lambda u: str(u).replace("-", "_"),
        lambda u: "not-a-uuid",
    ]
    return st.tuples(st.uuids(), st.sampled_from(forms)).map(lambda pair: pair[1](pair[0]))


def _out_of_range(field: Field) -> st.SearchStrategy[Any]:
    integer = field.kind == "integer"
    step = 1 if integer else 0.001
    beyond: list[st.SearchStrategy[Any]] = []
    if field.minimum is not None:
        low = field.minimum - step
        beyond.append(st.integers(max_value=int(low)) if integer else _finite(max_value=low))
    if field.above is not None:
        beyond.append(_finite(max_value=field.above))
    if field.maximum is not None:
        high = field.maximum + step
        beyond.append(st.integers(min_value=int(high)) if integer else _finite(min_value=high))
    return st.one_of(beyond)


def _finite(
    *, min_value: float | None = None, max_value: float | None = None
) -> st.SearchStrategy[float]:
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)
