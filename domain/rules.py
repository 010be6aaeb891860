"""How new objects come to be, and what input they accept."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import attrs

from conversation_service.domain.errors import InvalidField, SessionCompleted
from conversation_service.domain.model import (
    ChatSession,
    ContextScope,
    Conversation,
    GenerationParams,
    Message,
    MessageRole,
    MessageStatus,
)
from conversation_service.domain.session_machine import SessionState


@attrs.frozen(kw_only=True)
class InputLimits:
    """How long titles and messages may be (in characters)."""

    max_title_chars: int = 500
    max_message_chars: int = 100_000
    max_system_prompt_chars: int = 20_000
    max_comment_chars: int = 2_000  # a feedback comment


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
    title: str | None,
    is_archived: bool,
    at: datetime,
    limits: InputLimits,
) -> Conversation:
    """A new conversation; InvalidField when the title is empty or too long.

    Without a title it stays untitled (None) until its first reply names it.
    """
    return Conversation(
        id=id,
        org_id=org_id,
        title=None if title is None else _text("title", title, limits.max_title_chars),
        is_archived=is_archived,
        created_at=at,
        updated_at=at,
    )


def updated_conversation(
    conversation: Conversation,
    *,
    title: str | None,
    is_archived: bool | None,
    at: datetime,
    limits: InputLimits,
) -> Conversation:
    """The conversation with what the user changed (None: left as it is).

    A change moves `updated_at` forward to `at`; nothing to change leaves it untouched.
    InvalidField when the title is empty or too long.
    """
    if title is not None:
        title = _text("title", title, limits.max_title_chars)
    if title is None and is_archived is None:
        return conversation
    changed = attrs.evolve(
        conversation,
        title=conversation.title if title is None else title,
        is_archived=conversation.is_archived if is_archived is None else is_archived,
    )
    return changed.touched(at)


def check_text(field: str, value: str, maximum: int) -> str:
    """A text the user wrote: not blank, at most `maximum` characters, no NUL; InvalidField
    naming `field` otherwise."""
    return _text(field, value, maximum)


def new_session(
    *,
    id: UUID,  # noqa: A002
    conversation: Conversation,
    model_id: UUID,
    at: datetime,
    system_prompt: str | None = None,
    params: GenerationParams | None = None,
    context: ContextScope = ContextScope.SESSION,
    max_output_tokens: int | None = None,
    limits: InputLimits | None = None,
) -> ChatSession:
    """A new, active chat session on `model_id` inside `conversation`.

    InvalidField when the system prompt is empty or too long, or a parameter is out of
    range (max_tokens up to the model's `max_output_tokens`).
    """
    limits = limits or InputLimits()
    if system_prompt is not None:
        system_prompt = _text("system_prompt", system_prompt, limits.max_system_prompt_chars)
    params = params or GenerationParams()
    check_params(params, max_output_tokens)
    return ChatSession(
        id=id,
        org_id=conversation.org_id,
        conversation_id=conversation.id,
        model_id=model_id,
        status=SessionState.ACTIVE,
        created_at=at,
        updated_at=at,
        system_prompt=system_prompt,
        params=params,
        context=context,
    )


def check_params(params: GenerationParams, max_output_tokens: int | None) -> None:
    """InvalidField naming `params.<name>` for a sampling setting out of range."""
    if params.temperature is not None and not 0 <= params.temperature <= 2:
        raise InvalidField("params.temperature", "must be between 0 and 2")
    if params.top_p is not None and not 0 < params.top_p <= 1:
        raise InvalidField("params.top_p", "must be greater than 0 and at most 1")
    if params.max_tokens is not None:
        if params.max_tokens < 1:
            raise InvalidField("params.max_tokens", "must be at least 1")
        if max_output_tokens is not None and params.max_tokens > max_output_tokens:
            raise InvalidField(
                "params.max_tokens", f"must be at most {max_output_tokens} for this model"
            )


def check_message(text: str, limits: InputLimits, *, field: str = "message") -> str:
    """The user's message text if acceptable; InvalidField naming `field` otherwise."""
    return _text(field, text, limits.max_message_chars)


def check_can_take_message(session: ChatSession) -> None:
    """SessionCompleted when the session is closed for new messages."""
    if session.status is SessionState.COMPLETED:
        raise SessionCompleted(session.id)


def user_message(
    *,
    id: UUID,  # noqa: A002
    session: ChatSession,
    text: str,
    at: datetime,
    parent_id: UUID | None = None,
) -> Message:
    """The stored form of what the user sent, following `parent_id`."""
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
        parent_id=parent_id,
    )


def assistant_message(
    *,
    id: UUID,  # noqa: A002
    session: ChatSession,
    at: datetime,
    parent_id: UUID | None = None,
) -> Message:
    """An empty reply, in progress, from the session's model, answering `parent_id`."""
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
        parent_id=parent_id,
    )
