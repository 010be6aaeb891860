"""How new objects come to be, and what input they accept."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import attrs

from domain.errors import InvalidField, SessionCompleted
from domain.model import (
    ChatSession,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
)
from domain.session_machine import SessionState


@attrs.frozen(kw_only=True)
class InputLimits:
    """How long titles and messages may be (in characters)."""

    max_title_chars: int = 500
    max_message_chars: int = 100_000


def _text(field: str, value: str, maximum: int) -> str:
    if not value.strip():
        raise InvalidField(field, "must not be empty")
    if len(value) > maximum:
        raise InvalidField(field, f"must be at most {maximum} characters, got {len(value)}")
    if "\x00" in value:
        raise InvalidField(field, "must not contain NUL characters")
    return value


def new_conversation(
    *,
    id: UUID,  # noqa: A002
    org_id: UUID,
    title: str,
    is_archived: bool,
    at: datetime,
    limits: InputLimits,
) -> Conversation:
    """A new conversation; InvalidField when the title is empty or too long."""
    return Conversation(
        id=id,
        org_id=org_id,
        title=_text("title", title, limits.max_title_chars),
        is_archived=is_archived,
        created_at=at,
        updated_at=at,
    )


def new_session(
    *,
    id: UUID,
    conversation: Conversation,
    model_id: UUID,
    at: datetime,  # noqa: A002
) -> ChatSession:
    """A new, active chat session on `model_id` inside `conversation`."""
    return ChatSession(
        id=id,
        org_id=conversation.org_id,
        conversation_id=conversation.id,
        model_id=model_id,
        status=SessionState.ACTIVE,
        created_at=at,
        updated_at=at,
    )


def check_message(text: str, limits: InputLimits) -> str:
    """The user's message text if acceptable; InvalidField naming `message` otherwise."""
    return _text("message", text, limits.max_message_chars)


def check_can_take_message(session: ChatSession) -> None:
    """SessionCompleted when the session is closed for new messages."""
    if session.status is SessionState.COMPLETED:
        raise SessionCompleted(session.id)


def user_message(*, id: UUID, session: ChatSession, text: str, at: datetime) -> Message:  # noqa: A002
    """The stored form of what the user sent."""
    return Message(
        id=id,
        org_id=session.org_id,
        conversation_id=session.conversation_id,
        chat_session_id=session.id,
        role=MessageRole.USER,
        content=text,
        status=MessageStatus.COMPLETED,
        model_id=None,
        created_at=at,
        updated_at=at,
    )


def assistant_message(*, id: UUID, session: ChatSession, at: datetime) -> Message:  # noqa: A002
    """An empty reply, in progress, from the session's model."""
    return Message(
        id=id,
        org_id=session.org_id,
        conversation_id=session.conversation_id,
        chat_session_id=session.id,
        role=MessageRole.ASSISTANT,
        content="",
        status=MessageStatus.IN_PROGRESS,
        model_id=session.model_id,
        created_at=at,
        updated_at=at,
    )
