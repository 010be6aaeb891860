"""Domain values: valid ones, as the service makes them, and any value of a type.

The valid values keep the domain's rules (a user message is completed and has no model; a
reply's outcome fits its status; a session's params are in range), so a store must keep
them exactly. `any_value_of(type)` builds any value its type hints allow, rules or not: for
code that must render whatever it is given (views, serialisers).
"""

from __future__ import annotations

import enum
import typing
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import attrs
from hypothesis import strategies as st

from conversation_service.domain.model import (
    AccessRole,
    ChatSession,
    ContextScope,
    Conversation,
    GenerationParams,
    Latency,
    Message,
    MessageRole,
    MessageStatus,
    Org,
    Page,
    Principal,
    Usage,
)
from conversation_service.domain.replies import FINISH_CANCELLED, FINISH_ERROR
from conversation_service.domain.session_machine import SessionInput, SessionState
from conversation_service.testing.strategies.texts import (
    message_texts,
    stored_characters,
    system_prompts,
    titles,
)

# Instants stores keep to the microsecond, in UTC, in a span every database holds.
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
ids = st.uuids(version=4)
session_states = st.sampled_from(SessionState)
session_inputs = st.sampled_from(SessionInput)
roles = st.sampled_from(AccessRole)
counts = st.integers(min_value=0, max_value=2**31 - 1)


def orgs() -> st.SearchStrategy[Org]:
    return st.builds(Org, id=ids, name=titles(), created_at=instants)


def principals(org_id: UUID | None = None) -> st.SearchStrategy[Principal]:
    return st.builds(Principal, token_id=ids, org_id=st.just(org_id) if org_id else ids, role=roles)


def conversations(org_id: UUID | None = None) -> st.SearchStrategy[Conversation]:
    """A conversation, updated at or after it was created."""
    return st.builds(
        lambda created, later, **fields: Conversation(
            created_at=created, updated_at=max(created, later), **fields
        ),
        instants,
        instants,
        id=ids,
        org_id=st.just(org_id) if org_id else ids,
        title=titles(),
        is_archived=st.booleans(),
    )


def generation_params(max_output_tokens: int | None = None) -> st.SearchStrategy[GenerationParams]:
    """Sampling settings in range: temperature 0-2, top_p (0, 1], max_tokens 1 up to the
    model's `max_output_tokens`; any may be left to the model (None)."""
    return st.builds(
        GenerationParams,
        temperature=st.none() | st.floats(min_value=0, max_value=2),
        top_p=st.none() | st.floats(min_value=0, max_value=1, exclude_min=True),
        max_tokens=st.none() | st.integers(min_value=1, max_value=max_output_tokens or 100_000),
    )


def chat_sessions(conversation: Conversation | None = None) -> st.SearchStrategy[ChatSession]:
    """A session of `conversation` (a new one when None), in any state, on any model."""
    owner = st.just(conversation) if conversation else conversations()
    return st.builds(
        lambda conv, created, **fields: ChatSession(
            org_id=conv.org_id, conversation_id=conv.id, created_at=created,
            updated_at=created, **fields,
        ),
        owner,
        instants,
        id=ids,
        model_id=ids,
        status=session_states,
        system_prompt=st.none() | system_prompts(),
        params=generation_params(),
        context=st.sampled_from(ContextScope),
        version=st.integers(min_value=1, max_value=1000),
    )  # fmt: skip


def usages() -> st.SearchStrategy[Usage]:
    return st.builds(Usage, prompt_tokens=counts, completion_tokens=counts, estimated=st.booleans())


def latencies() -> st.SearchStrategy[Latency]:
    total = st.integers(min_value=0, max_value=10**7)
    return total.flatmap(
        lambda ms: st.builds(
            Latency, first_token_ms=st.none() | st.integers(0, ms), total_ms=st.just(ms)
        )
    )


_OUTCOMES: dict[MessageStatus, st.SearchStrategy[dict[str, Any]]] = {
    MessageStatus.COMPLETED: st.fixed_dictionaries(
        {"finish_reason": st.sampled_from(["stop", "length"]), "usage": st.none() | usages()}
    ),
    MessageStatus.IN_PROGRESS: st.just({}),
    MessageStatus.CANCELLED: st.fixed_dictionaries(
        {"finish_reason": st.just(FINISH_CANCELLED), "usage": st.none() | usages()}
    ),
    MessageStatus.FAILED: st.fixed_dictionaries(
        {
            "finish_reason": st.just(FINISH_ERROR),
            "error_code": st.sampled_from(["upstream_error", "upstream_timeout", "internal_error"]),
            "error_message": message_texts(max_size=200),
        }
    ),
    MessageStatus.INCOMPLETE: st.fixed_dictionaries(
        {
            "finish_reason": st.just(FINISH_ERROR),
            "error_code": st.sampled_from(["interrupted", "shutting_down"]),
            "error_message": message_texts(max_size=200),
        }
    ),
}


def messages(
    session: ChatSession | None = None, *, role: MessageRole | None = None
) -> st.SearchStrategy[Message]:
    """A message of `session` (a new one when None): a user's (completed, no model) or a
    reply in any status, with the outcome fields its status has."""
    owner = st.just(session) if session else chat_sessions()
    kinds = st.just(role) if role else st.sampled_from(MessageRole)
    return st.tuples(owner, kinds, instants).flatmap(lambda drawn: _message(*drawn))


def _message(session: ChatSession, role: MessageRole, at: datetime) -> st.SearchStrategy[Message]:
    common = {
        "org_id": session.org_id, "conversation_id": session.conversation_id,
        "chat_session_id": session.id, "role": role, "created_at": at, "updated_at": at,
    }  # fmt: skip
    if role is MessageRole.USER:
        return st.builds(
            Message, id=ids, content=message_texts(max_size=500),
            status=st.just(MessageStatus.COMPLETED), model_id=st.none(), **_just(common),
        )  # fmt: skip
    status = st.sampled_from(MessageStatus)
    return status.flatmap(
        lambda chosen: _OUTCOMES[chosen].flatmap(
            lambda outcome: st.builds(
                Message,
                id=ids,
                content=st.text(stored_characters(), max_size=500),  # a model's NUL is replaced
                status=st.just(chosen),
                model_id=st.just(session.model_id),
                latency=st.none() | latencies(),
                **_just({**common, **outcome}),
            )  # fmt: skip
        )
    )


def _just(fields: dict[str, Any]) -> dict[str, st.SearchStrategy[Any]]:
    return {name: st.just(value) for name, value in fields.items()}


# -- any value of a type, rules or not ---------------------------------------------------------

SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    str: st.text(max_size=20),
    int: st.integers(min_value=0, max_value=2**53),  # every integer the service shows counts
    float: st.floats(allow_nan=False, allow_infinity=False),
    bool: st.booleans(),
    UUID: st.uuids(),
    datetime: st.datetimes(timezones=st.just(UTC)),
}


def any_value_of(hint: Any) -> st.SearchStrategy[Any]:
    """Any value of a type, built from its hints: attrs classes, enums, optionals, tuples,
    and the scalars of SCALARS."""
    args = typing.get_args(hint)
    if type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return st.none() | any_value_of(inner)
    if typing.get_origin(hint) is tuple:
        return st.lists(any_value_of(args[0]), max_size=3).map(tuple)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(hint)
    if isinstance(hint, type) and attrs.has(hint):
        hints = typing.get_type_hints(hint)
        return st.builds(hint, **{f.name: any_value_of(hints[f.name]) for f in attrs.fields(hint)})
    return SCALARS[hint]


def pages_of(kind: type) -> st.SearchStrategy[Page[Any]]:
    """Any page of `kind` values."""
    return st.builds(
        Page,
        items=any_value_of(tuple[kind, ...]),  # type: ignore[valid-type]
        limit=st.integers(1, 1000),
        offset=any_value_of(int),
        has_more=st.booleans(),
    )
