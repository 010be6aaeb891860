"""Generated titles, feedback rules and the checks an import's records pass."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversation_service.domain.errors import InvalidField
from conversation_service.domain.feedback import Rating, give_feedback
from conversation_service.domain.model import (
    ChatSession,
    Conversation,
    GenerationParams,
    Message,
    MessageRole,
    MessageStatus,
)
from conversation_service.domain.rules import InputLimits
from conversation_service.domain.session_machine import SessionState
from conversation_service.domain.titles import TITLE_MAX_CHARS, clean_title, first_words
from conversation_service.domain.transfer import ImportCheck, MessageRecord, as_imported

AT = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Plan the launch", "Plan the launch"),
        ("  one\ttwo\n three  ", "one two three"),
        ("a b c d e f g h", "a b c d e f g h"),
        ("a b c d e f g h i", "a b c d e f g h…"),
        ("Is this ok? Yes it is, I think so.", "Is this ok? Yes it is, I think…"),
        ("x" * 200, "x" * (TITLE_MAX_CHARS - 1) + "…"),
    ],
)
def test_first_words(text: str, title: str) -> None:
    assert first_words(text) == title


@given(st.text(min_size=1).filter(str.strip))
def test_first_words_are_never_empty_nor_too_long(text: str) -> None:
    title = first_words(text)
    assert 1 <= len(title) <= TITLE_MAX_CHARS
    assert title == title.strip() and "\x00" not in title


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ("Vector databases explained", "Vector databases explained"),
        ('"Vector databases explained."\n\nHope this helps!', "Vector databases explained"),
        ("\n  Title: **Launch plan**  ", "Launch plan"),
        ("« Plan de lancement »", "Plan de lancement"),
        ("", None),
        ('  ""  \n', None),
        ("w " * 100, ("w " * 40).strip()),
    ],
)
def test_a_models_answer_is_cleaned_into_a_title(answer: str, title: str | None) -> None:
    assert clean_title(answer) == title


def message(role: MessageRole, **changes: object) -> Message:
    made = Message(
        id=uuid4(),
        org_id=uuid4(),
        conversation_id=uuid4(),
        chat_session_id=uuid4(),
        role=role,
        content="text",
        status=MessageStatus.COMPLETED,
        model_id=None if role is MessageRole.USER else uuid4(),
        created_at=AT,
        updated_at=AT,
    )
    return attrs.evolve(made, **changes)


def test_feedback_is_on_replies_only_keeps_its_first_time_and_bounds_its_comment() -> None:
    limits = InputLimits(max_comment_chars=10)
    reply = message(MessageRole.ASSISTANT)
    first = give_feedback(
        message=reply, rating=Rating.DOWN, comment=None, at=AT, previous=None, limits=limits
    )
    later = datetime(2026, 11, 27, tzinfo=UTC)
    again = give_feedback(
        message=reply, rating=Rating.UP, comment="better", at=later, previous=first, limits=limits
    )
    assert (again.created_at, again.updated_at, again.rating) == (AT, later, Rating.UP)
    with pytest.raises(InvalidField) as error:
        give_feedback(
            message=message(MessageRole.USER),
            rating=Rating.UP,
            comment=None,
            at=AT,
            previous=None,
            limits=limits,
        )
    assert error.value.field == "message_id"
    for comment in ("x" * 11, "   ", "a\x00b"):
        with pytest.raises(InvalidField) as error:
            give_feedback(
                message=reply,
                rating=Rating.UP,
                comment=comment,
                at=AT,
                previous=None,
                limits=limits,
            )
        assert error.value.field == "comment"


def records() -> tuple[Conversation, ChatSession, Message, Message]:
    conversation = Conversation(
        id=uuid4(), org_id=uuid4(), title=None, is_archived=False, created_at=AT, updated_at=AT
    )
    session = ChatSession(
        id=uuid4(),
        org_id=conversation.org_id,
        conversation_id=conversation.id,
        model_id=uuid4(),
        status=SessionState.RESPONDING,
        created_at=AT,
        updated_at=AT,
        version=7,
    )
    ids = {"conversation_id": conversation.id, "chat_session_id": session.id}
    user = message(MessageRole.USER, **ids)
    reply = message(MessageRole.ASSISTANT, status=MessageStatus.IN_PROGRESS, **ids)
    return conversation, session, user, reply


def test_an_import_is_stored_as_a_restart_leaves_a_reply_cut_off() -> None:
    conversation, session, user, reply = records()
    org_id = uuid4()
    imported_session = as_imported(session, org_id)
    assert isinstance(imported_session, ChatSession)
    assert (imported_session.status, imported_session.version) == (SessionState.ACTIVE, 1)
    imported = as_imported(MessageRecord(message=reply), org_id)
    assert isinstance(imported, MessageRecord)
    assert imported.message.status is MessageStatus.INCOMPLETE
    assert imported.message.error_code == "interrupted"
    assert as_imported(conversation, org_id) == attrs.evolve(conversation, org_id=org_id)


def test_the_import_check_takes_an_export_in_order() -> None:
    conversation, session, user, reply = records()
    check = ImportCheck(InputLimits())
    reply = attrs.evolve(reply, parent_id=user.id)
    for record in (
        conversation,
        attrs.evolve(session, head_id=reply.id),
        MessageRecord(message=user),
    ):
        check.take(record)
    assert check.heads_missing() == [session.id]  # its head comes later
    check.take(MessageRecord(message=reply))
    assert check.heads_missing() == []


@pytest.mark.parametrize(
    ("mistake", "field"),
    [
        ("conversation twice", "id"),
        ("session before its conversation", "conversation_id"),
        ("message before its session", "chat_session_id"),
        ("message in another conversation", "conversation_id"),
        ("message twice", "id"),
        ("empty user message", "content"),
        ("NUL in a reply", "content"),
        ("feedback on a user message", "feedback"),
        ("title too long", "title"),
        ("temperature out of range", "params.temperature"),
        ("parent not before it", "parent_id"),
        ("parent in another session", "parent_id"),
    ],
)
def test_the_import_check_names_the_field_at_fault(mistake: str, field: str) -> None:
    conversation, session, user, reply = records()
    sequence: list[object] = [conversation, session, MessageRecord(message=user)]
    if mistake == "conversation twice":
        sequence.append(conversation)
    elif mistake == "session before its conversation":
        sequence = [attrs.evolve(session, conversation_id=uuid4())]
    elif mistake == "message before its session":
        sequence.append(MessageRecord(message=attrs.evolve(reply, chat_session_id=uuid4())))
    elif mistake == "message in another conversation":
        sequence.append(MessageRecord(message=attrs.evolve(reply, conversation_id=uuid4())))
    elif mistake == "message twice":
        sequence.append(MessageRecord(message=user))
    elif mistake == "empty user message":
        sequence.append(MessageRecord(message=attrs.evolve(user, id=uuid4(), content=" ")))
    elif mistake == "NUL in a reply":
        sequence.append(MessageRecord(message=attrs.evolve(reply, content="a\x00")))
    elif mistake == "feedback on a user message":
        feedback = give_feedback(
            message=reply,
            rating=Rating.UP,
            comment=None,
            at=AT,
            previous=None,
            limits=InputLimits(),
        )
        sequence.append(MessageRecord(message=attrs.evolve(user, id=uuid4()), feedback=feedback))
    elif mistake == "title too long":
        sequence = [attrs.evolve(conversation, title="t" * 501)]
    elif mistake == "temperature out of range":
        sequence = [conversation, attrs.evolve(session, params=GenerationParams(temperature=3))]
    elif mistake == "parent not before it":
        sequence.append(MessageRecord(message=attrs.evolve(reply, parent_id=uuid4())))
    elif mistake == "parent in another session":
        other = attrs.evolve(session, id=uuid4())
        sequence += [
            other,
            MessageRecord(message=attrs.evolve(reply, chat_session_id=other.id, parent_id=user.id)),
        ]
    check = ImportCheck(InputLimits())
    with pytest.raises(InvalidField) as error:
        for record in sequence:
            check.take(record)  # type: ignore[arg-type]
    assert error.value.field == field
