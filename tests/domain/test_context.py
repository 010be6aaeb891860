"""Fitting a conversation into a model's context window."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversation_service.domain.context import (
    MESSAGE_OVERHEAD_TOKENS,
    PromptMessage,
    build_prompt,
    check_message_fits,
    estimate_tokens,
    history_limit,
    plan_prompt,
    prompt_tokens,
    reserve_for_reply,
)
from conversation_service.domain.errors import InvalidField
from conversation_service.domain.model import (
    ChatSession,
    GenerationParams,
    Message,
    MessageRole,
    MessageStatus,
)
from conversation_service.domain.rules import check_params
from conversation_service.domain.session_machine import SessionState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SESSION = uuid4()


def turn(text: str, role: MessageRole = MessageRole.USER) -> Message:
    return Message(
        id=uuid4(),
        org_id=uuid4(),
        conversation_id=uuid4(),
        chat_session_id=SESSION,
        role=role,
        content=text,
        status=MessageStatus.COMPLETED,
        model_id=None,
        created_at=T0,
        updated_at=T0,
    )


def test_everything_fits_in_a_large_window() -> None:
    history = [turn("one"), turn("two", MessageRole.ASSISTANT), turn("three")]
    plan = plan_prompt(
        system_prompt="be brief", history=history, context_window=10_000, reserve_for_reply=100
    )
    assert [(m.role, m.content) for m in plan.messages] == [
        ("system", "be brief"),
        ("user", "one"),
        ("assistant", "two"),
        ("user", "three"),
    ]
    assert (plan.included, plan.trimmed) == (3, 0)


def test_oldest_messages_go_first_never_the_system_prompt_or_the_new_message() -> None:
    history = [turn("a" * 400), turn("b" * 40, MessageRole.ASSISTANT), turn("c" * 40)]
    # Room for the system prompt, the new message and one more short one.
    window = 50 + 2 * (10 + MESSAGE_OVERHEAD_TOKENS) + estimate_tokens("sys") + 4
    plan = plan_prompt(
        system_prompt="sys", history=history, context_window=window, reserve_for_reply=50
    )
    assert [m.content for m in plan.messages] == ["sys", "b" * 40, "c" * 40]
    assert (plan.included, plan.trimmed) == (2, 1)


def test_the_new_message_is_kept_even_when_it_alone_overflows() -> None:
    plan = plan_prompt(
        system_prompt=None,
        history=[turn("x"), turn("y" * 4000)],
        context_window=100,
        reserve_for_reply=50,
    )
    assert [m.content for m in plan.messages] == ["y" * 4000] and plan.trimmed == 1


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=30),
    window=st.integers(min_value=1, max_value=3000),
    system=st.one_of(st.none(), st.text(min_size=1, max_size=200)),
)
def test_the_plan_is_a_newest_suffix_that_fits(
    sizes: list[int], window: int, system: str | None
) -> None:
    history = [turn("w" * n or "z") for n in sizes]
    plan = plan_prompt(
        system_prompt=system, history=history, context_window=window, reserve_for_reply=0
    )
    turns = [m for m in plan.messages if m.role != "system"]
    assert plan.included == len(turns) >= 1 and plan.included + plan.trimmed == len(history)
    assert [m.content for m in turns] == [m.content for m in history[plan.trimmed :]]
    assert bool(system) == (plan.messages[0].role == "system")
    assert plan.estimated_tokens == sum(prompt_tokens(m) for m in plan.messages)
    if plan.included > 1:
        assert plan.estimated_tokens <= window
    if plan.trimmed:  # one more message would not have fitted
        dropped = history[plan.trimmed - 1]
        assert plan.estimated_tokens + estimate_tokens(dropped.content) + 4 > window


@given(
    turns=st.lists(
        st.tuples(st.sampled_from(list(MessageRole)), st.integers(min_value=0, max_value=300)),
        min_size=1,
        max_size=30,
    ),
    window=st.integers(min_value=1, max_value=2000),
)
def test_the_plan_is_what_the_whole_prompt_trimmed_from_its_oldest_end_is(
    turns: list[tuple[MessageRole, int]], window: int
) -> None:
    # The plan makes entries only for what it keeps; the whole prompt, built and then cut
    # from its oldest end at the first message that does not fit, is the same.
    history = [turn("w" * n, role) for role, n in turns]
    plan = plan_prompt(
        system_prompt=None, history=history, context_window=window, reserve_for_reply=0
    )
    whole = build_prompt(history)
    kept: list[PromptMessage] = []
    for message in reversed(whole):
        if kept and sum(map(prompt_tokens, kept)) + prompt_tokens(message) > window:
            break
        kept.insert(0, message)
    assert plan.messages == tuple(kept)
    assert (plan.included, plan.trimmed) == (len(kept), len(whole) - len(kept))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (GenerationParams(temperature=-0.1), "params.temperature"),
        (GenerationParams(temperature=2.5), "params.temperature"),
        (GenerationParams(top_p=0), "params.top_p"),
        (GenerationParams(top_p=1.01), "params.top_p"),
        (GenerationParams(max_tokens=0), "params.max_tokens"),
        (GenerationParams(max_tokens=1025), "params.max_tokens"),
    ],
)
def test_out_of_range_params_name_the_field(params: GenerationParams, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        check_params(params, max_output_tokens=1024)
    assert caught.value.field == field


def test_params_at_their_limits_are_fine() -> None:
    check_params(GenerationParams(temperature=0, top_p=1, max_tokens=1024), max_output_tokens=1024)
    check_params(GenerationParams(temperature=2, top_p=0.01, max_tokens=1), max_output_tokens=1024)


def test_a_new_message_must_fit_with_the_system_prompt_and_the_reply_reserve() -> None:
    session = ChatSession(
        id=uuid4(), org_id=uuid4(), conversation_id=uuid4(), model_id=uuid4(),
        status=SessionState.ACTIVE, created_at=T0, updated_at=T0, system_prompt="s" * 40,
        params=GenerationParams(max_tokens=20),
    )  # fmt: skip
    # 10 + 4 (system) + 10 + 4 (message) = 28 tokens; 50 - 20 kept for the reply leaves 30.
    check_message_fits(session, "m" * 40, model_name="m", context_window=50, max_output_tokens=99)
    with pytest.raises(InvalidField) as caught:
        check_message_fits(session, "m" * 52, model_name="small", context_window=50,
                           max_output_tokens=99)  # fmt: skip
    assert caught.value.field == "message" and "small" in caught.value.reason
    assert reserve_for_reply(attrs.evolve(session, params=GenerationParams()), 99) == 99


@given(
    texts=st.lists(st.text(min_size=1, max_size=30), max_size=60),
    system=st.none() | st.text(min_size=1, max_size=40),
    window=st.integers(min_value=1, max_value=300),
    reserve=st.integers(min_value=1, max_value=50),
)
def test_reading_only_the_history_limit_changes_no_prompt(
    texts: list[str], system: str | None, window: int, reserve: int
) -> None:
    session = ChatSession(
        id=SESSION, org_id=uuid4(), conversation_id=uuid4(), model_id=uuid4(),
        status=SessionState.ACTIVE, created_at=T0, updated_at=T0, system_prompt=system,
    )  # fmt: skip
    history = [
        turn(t, MessageRole.USER if i % 2 else MessageRole.ASSISTANT) for i, t in enumerate(texts)
    ]
    new = turn("the new message")
    limit = history_limit(session, context_window=window, max_output_tokens=reserve)
    whole = plan_prompt(
        system_prompt=system, history=[*history, new], context_window=window,
        reserve_for_reply=reserve,
    )  # fmt: skip
    read = plan_prompt(
        system_prompt=system, history=[*history[-limit:], new], context_window=window,
        reserve_for_reply=reserve,
    )  # fmt: skip
    assert read.messages == whole.messages and read.included == whole.included
