"""Valid domain values with a controllable clock, for tests that store them directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from conversation_service.domain.model import (
    ChatSession,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    Org,
    Usage,
)
from conversation_service.domain.session_machine import SessionState

T0 = datetime(2026, 11, 26, 6, 2, 59, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A fixed instant `seconds` after T0, so tests can force ties and reorderings."""
    return T0 + timedelta(seconds=seconds)


class Values:
    """Builds valid domain values; every object gets a fresh id."""

    def at(self, seconds: float) -> datetime:
        return at(seconds)

    def org(self, *, name: str = "acme", created: float = 0) -> Org:
        return Org(id=uuid4(), name=name, created_at=at(created))

    def conversation(
        self, org: Org, *, created: float = 0, title: str | None = "a title", archived: bool = False
    ) -> Conversation:
        return Conversation(
            id=uuid4(),
            org_id=org.id,
            title=title,
            is_archived=archived,
            created_at=at(created),
            updated_at=at(created),
        )

    def session(
        self,
        conversation: Conversation,
        *,
        created: float = 0,
        status: SessionState = SessionState.ACTIVE,
    ) -> ChatSession:
        return ChatSession(
            id=uuid4(),
            org_id=conversation.org_id,
            conversation_id=conversation.id,
            model_id=uuid4(),
            status=status,
            created_at=at(created),
            updated_at=at(created),
        )

    def message(
        self,
        session: ChatSession,
        *,
        created: float = 0,
        content: str = "hello",
        role: MessageRole = MessageRole.USER,
        status: MessageStatus = MessageStatus.COMPLETED,
        model_id: UUID | None = None,
        finish_reason: str | None = None,
        usage: Usage | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> Message:
        return Message(
            id=uuid4(),
            org_id=session.org_id,
            conversation_id=session.conversation_id,
            chat_session_id=session.id,
            role=role,
            content=content,
            status=status,
            model_id=model_id,
            created_at=at(created),
            updated_at=at(created),
            finish_reason=finish_reason,
            usage=usage,
            error_code=error_code,
            error_message=error_message,
        )


async def org_with_session(store: Any, values: Values) -> tuple[Org, Conversation, ChatSession]:
    """An organisation holding one conversation with one session, stored."""
    org = values.org()
    conversation = values.conversation(org)
    session = values.session(conversation, created=1)
    await store.add_org(org)
    await store.add_conversation(conversation)
    await store.add_session(session)
    return org, conversation, session
