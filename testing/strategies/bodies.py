"""Valid request bodies, as JSON objects a client sends: every one the service must take.

Each route's body is drawn around the ids it needs (which the test has made), with every
optional field present or not, nullable ones null or not, numbers at and inside their
bounds (`InputLimits` and the model's `max_output_tokens` where they apply), ids in either
case of hexadecimal, and texts from `texts.py`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from conversation_service.adapters.llm.registry_entry import PROVIDERS
from conversation_service.domain.feedback import Rating
from conversation_service.domain.model import ContextScope
from conversation_service.domain.replies import Multitask
from conversation_service.domain.rules import InputLimits
from conversation_service.testing.strategies.texts import (
    LIMITS,
    message_texts,
    system_prompts,
    texts,
    titles,
)

Body = dict[str, Any]


def id_texts(value: UUID | str) -> st.SearchStrategy[str]:
    """An id as the API takes it: 8-4-4-4-12 hexadecimal digits, lower or upper case."""
    text = str(value)
    return st.sampled_from([text.lower(), text.upper()])


def create_conversation_bodies(limits: InputLimits = LIMITS) -> st.SearchStrategy[Body]:
    return st.fixed_dictionaries({"title": titles(limits)}, optional={"is_archived": st.booleans()})


def session_params_bodies(max_output_tokens: int | None = None) -> st.SearchStrategy[Any]:
    """`params`: null, or any of temperature 0-2, top_p (0, 1], max_tokens 1 up to the
    model's most (each absent, null or in range; whole numbers as JSON integers too)."""
    temperature = st.floats(min_value=0, max_value=2) | st.integers(0, 2)
    top_p = st.floats(min_value=0, max_value=1, exclude_min=True) | st.just(1)
    max_tokens = st.integers(min_value=1, max_value=max_output_tokens or 100_000)
    return st.none() | st.fixed_dictionaries(
        {},
        optional={
            "temperature": st.none() | temperature,
            "top_p": st.none() | top_p,
            "max_tokens": st.none() | max_tokens,
        },
    )


def create_session_bodies(
    conversation_id: UUID | str,
    model_id: UUID | str,
    *,
    max_output_tokens: int | None = None,
    limits: InputLimits = LIMITS,
) -> st.SearchStrategy[Body]:
    return st.fixed_dictionaries(
        {"conversation_id": id_texts(conversation_id), "model_id": id_texts(model_id)},
        optional={
            "system_prompt": st.none() | system_prompts(limits),
            "params": session_params_bodies(max_output_tokens),
            "context": st.sampled_from([scope.value for scope in ContextScope]),
        },
    )


def stream_chat_bodies(
    chat_session_id: UUID | str,
    *,
    limits: InputLimits = LIMITS,
    max_message_chars: int | None = 2000,
    multitask: bool = True,
) -> st.SearchStrategy[Body]:
    """A message for a session; `max_message_chars` keeps it within a small model's
    context (None: up to the limit); `multitask` whether to name a mode."""
    optional = {"multitask": st.sampled_from([m.value for m in Multitask])} if multitask else {}
    return st.fixed_dictionaries(
        {
            "chat_session_id": id_texts(chat_session_id),
            "message": message_texts(limits, max_size=max_message_chars),
        },
        optional=optional,
    )


def cancel_bodies(
    chat_session_id: UUID | str, message_id: UUID | str | None = None
) -> st.SearchStrategy[Body]:
    """A cancel: of the session's running reply, or (given `message_id`) of that reply."""
    target = st.none() if message_id is None else id_texts(message_id)
    return st.fixed_dictionaries(
        {"chat_session_id": id_texts(chat_session_id)}, optional={"message_id": target}
    )


def complete_session_bodies(chat_session_id: UUID | str) -> st.SearchStrategy[Body]:
    return st.fixed_dictionaries({"chat_session_id": id_texts(chat_session_id)})


def update_conversation_bodies(
    conversation_id: UUID | str, limits: InputLimits = LIMITS
) -> st.SearchStrategy[Body]:
    """A change of title and archived flag (absent or null: unchanged)."""
    return st.fixed_dictionaries(
        {"conversation_id": id_texts(conversation_id)},
        optional={"title": st.none() | titles(limits), "is_archived": st.none() | st.booleans()},
    )


def delete_conversation_bodies(conversation_id: UUID | str) -> st.SearchStrategy[Body]:
    return st.fixed_dictionaries({"conversation_id": id_texts(conversation_id)})


def feedback_bodies(
    message_id: UUID | str, limits: InputLimits = LIMITS
) -> st.SearchStrategy[Body]:
    """A rating of an assistant reply, with or without a comment."""
    return st.fixed_dictionaries(
        {"message_id": id_texts(message_id), "rating": st.sampled_from([r.value for r in Rating])},
        optional={"comment": st.none() | texts(limits.max_comment_chars)},
    )


def clear_feedback_bodies(message_id: UUID | str) -> st.SearchStrategy[Body]:
    return st.fixed_dictionaries({"message_id": id_texts(message_id)})


def regenerate_bodies(
    chat_session_id: UUID | str, message_id: UUID | str | None = None
) -> st.SearchStrategy[Body]:
    """Another reply to a reply's question: the session's head reply, or `message_id`."""
    optional: dict[str, st.SearchStrategy[Any]] = {
        "multitask": st.sampled_from([m.value for m in Multitask])
    }
    if message_id is not None:
        optional["message_id"] = id_texts(message_id)
    return st.fixed_dictionaries({"chat_session_id": id_texts(chat_session_id)}, optional=optional)


def edit_bodies(
    chat_session_id: UUID | str,
    message_id: UUID | str,
    *,
    limits: InputLimits = LIMITS,
    max_message_chars: int | None = 2000,
) -> st.SearchStrategy[Body]:
    """A new version of a user message of the session's current branch."""
    return st.fixed_dictionaries(
        {
            "chat_session_id": id_texts(chat_session_id),
            "message_id": id_texts(message_id),
            "content": message_texts(limits, max_size=max_message_chars),
        },
        optional={"multitask": st.sampled_from([m.value for m in Multitask])},
    )


def select_branch_bodies(
    chat_session_id: UUID | str, message_id: UUID | str
) -> st.SearchStrategy[Body]:
    return st.fixed_dictionaries(
        {"chat_session_id": id_texts(chat_session_id), "message_id": id_texts(message_id)}
    )


def model_names() -> st.SearchStrategy[str]:
    """A model's name an organisation may register: not blank, not `echo`."""
    return texts(60).filter(lambda name: name != "echo")


def register_model_bodies(base_url: str) -> st.SearchStrategy[Body]:
    """A model for POST /api/models (an admin's) at `base_url` (which the server must be
    allowed to call: public, or private ones allowed). Names are drawn: two bodies may
    name the same model, which an organisation refuses (409)."""
    seconds = st.floats(min_value=0.001, max_value=600)
    tokens = st.integers(min_value=1, max_value=1_000_000)
    sizes = st.tuples(tokens, tokens).map(sorted)  # max_output_tokens <= context_window
    return st.tuples(sizes, st.sampled_from(sorted(PROVIDERS))).flatmap(
        lambda drawn: st.fixed_dictionaries(
            {
                "name": model_names(),
                "provider": st.just(drawn[1]),
                "base_url": st.just(base_url),
                "upstream_model": texts(60),
                "context_window": st.just(drawn[0][1]),
                "max_output_tokens": st.just(drawn[0][0]),
            },
            optional={
                "api_key": st.none() | st.text(st.characters(codec="ascii"), min_size=1),
                "connect_timeout": seconds,
                "first_token_timeout": seconds,
                "idle_timeout": seconds,
                "total_timeout": seconds,
                "max_retries": st.integers(min_value=0, max_value=10),
                "max_retry_wait": st.floats(min_value=0, max_value=600),
                **(
                    {"default_max_tokens": st.integers(min_value=1, max_value=drawn[0][0])}
                    if drawn[1] == "anthropic"
                    else {}
                ),
            },
        )
    )
