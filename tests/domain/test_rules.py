"""Creating conversations, sessions and messages; input limits; access rules; prompts."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversation_service.domain.access import (
    Action,
    authorize,
    hash_token,
    looks_like_token,
    make_token,
)
from conversation_service.domain.context import build_prompt, estimate_tokens, estimated_usage
from conversation_service.domain.errors import Forbidden, InvalidField, SessionCompleted
from conversation_service.domain.model import AccessRole, MessageRole, MessageStatus, Principal
from conversation_service.domain.rules import (
    InputLimits,
    assistant_message,
    check_can_take_message,
    check_message,
    new_conversation,
    new_session,
    user_message,
)
from conversation_service.domain.session_machine import SessionInput, SessionState
from conversation_service.testing import strategies as cs

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = InputLimits(max_title_chars=10, max_message_chars=20)


def conversation(title: str = "t"):
    return new_conversation(
        id=uuid4(), org_id=uuid4(), title=title, is_archived=False, at=T0, limits=LIMITS
    )


@pytest.mark.parametrize("title", ["", "   ", "x" * 11, "a\x00b"])
def test_bad_titles_are_refused_naming_the_field(title: str) -> None:
    with pytest.raises(InvalidField) as caught:
        conversation(title)
    assert caught.value.field == "title"


def test_title_at_the_limit_is_kept_as_given() -> None:
    assert conversation(" x" * 5).title == " x" * 5


@given(cs.message_texts(LIMITS))
def test_any_message_within_limits_is_accepted_unchanged(text: str) -> None:
    assert check_message(text, LIMITS) == text


@given(cs.refused_texts(LIMITS.max_message_chars))
def test_any_refused_message_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidField) as caught:
        check_message(text, LIMITS)
    assert caught.value.field == "message"


def test_message_over_limit_names_the_field_and_length() -> None:
    with pytest.raises(InvalidField) as caught:
        check_message("x" * 21, LIMITS)
    assert caught.value.field == "message" and "21" in caught.value.reason


def test_new_session_belongs_to_its_conversation_and_is_active() -> None:
    conv = conversation()
    model_id = uuid4()
    session = new_session(id=uuid4(), conversation=conv, model_id=model_id, at=T0)
    assert (session.org_id, session.conversation_id, session.model_id) == (
        conv.org_id,
        conv.id,
        model_id,
    )
    assert session.status is SessionState.ACTIVE


def test_completed_session_takes_no_message() -> None:
    session = new_session(id=uuid4(), conversation=conversation(), model_id=uuid4(), at=T0)
    check_can_take_message(session)
    with pytest.raises(SessionCompleted):
        check_can_take_message(session.apply(SessionInput.COMPLETE, T0))


def test_messages_carry_the_session_and_the_model_on_replies() -> None:
    session = new_session(id=uuid4(), conversation=conversation(), model_id=uuid4(), at=T0)
    user = user_message(id=uuid4(), session=session, text="hi", at=T0)
    reply = assistant_message(id=uuid4(), session=session, at=T0)
    assert user.role is MessageRole.USER and user.model_id is None
    assert user.status is MessageStatus.COMPLETED
    assert reply.model_id == session.model_id and reply.status is MessageStatus.IN_PROGRESS
    assert reply.chat_session_id == user.chat_session_id == session.id


def test_prompt_keeps_order_and_skips_empty_replies() -> None:
    session = new_session(id=uuid4(), conversation=conversation(), model_id=uuid4(), at=T0)
    history = [
        user_message(id=uuid4(), session=session, text="one", at=T0),
        assistant_message(id=uuid4(), session=session, at=T0),  # failed, empty
        user_message(id=uuid4(), session=session, text="two", at=T0),
        assistant_message(id=uuid4(), session=session, at=T0).with_content("ok", T0),
    ]
    assert [(p.role, p.content) for p in build_prompt(history)] == [
        ("user", "one"),
        ("user", "two"),
        ("assistant", "ok"),
    ]


@given(st.text(max_size=200))
def test_token_estimate_is_a_quarter_of_the_characters_rounded_up(text: str) -> None:
    assert estimate_tokens(text) * 4 >= len(text) > (estimate_tokens(text) - 1) * 4 or text == ""


def test_estimated_usage_is_marked_estimated() -> None:
    usage = estimated_usage(build_prompt([]), "abcdefgh")
    assert usage.completion_tokens == 2 and usage.prompt_tokens == 0 and usage.estimated


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        (AccessRole.VIEWER, Action.READ, True),
        (AccessRole.VIEWER, Action.WRITE, False),
        (AccessRole.MEMBER, Action.WRITE, True),
        (AccessRole.MEMBER, Action.ADMINISTER, False),
        (AccessRole.ADMIN, Action.ADMINISTER, True),
    ],
)
def test_roles_allow_what_they_say(role: AccessRole, action: Action, allowed: bool) -> None:
    who = Principal(token_id=uuid4(), org_id=uuid4(), role=role)
    if allowed:
        authorize(who, who.org_id, action)
    else:
        with pytest.raises(Forbidden):
            authorize(who, who.org_id, action)


def test_a_token_of_another_org_is_forbidden_even_for_admins() -> None:
    who = Principal(token_id=uuid4(), org_id=uuid4(), role=AccessRole.ADMIN)
    with pytest.raises(Forbidden):
        authorize(who, uuid4(), Action.READ)


def test_tokens_are_recognised_and_hashed_not_kept() -> None:
    token = make_token("s" * 43)
    assert looks_like_token(token) and not looks_like_token("s" * 46)
    digest = hash_token(token)
    assert len(digest) == 64 and "s" * 10 not in digest
