"""The values the service keeps: organisations, conversations, chat sessions and messages.

All are frozen and keyword-only; time and ids come in as arguments, never read here.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

import attrs

from conversation_service.domain.session_machine import SessionInput, SessionState, next_state


class MessageRole(enum.Enum):
    """Who wrote a message."""

    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(enum.Enum):
    """Where a message is in its life; user messages are always COMPLETED."""

    COMPLETED = "completed"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INCOMPLETE = "incomplete"  # the service stopped or crashed while writing it


class AccessRole(enum.Enum):
    """What a token may do inside its organisation."""

    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


@attrs.frozen(kw_only=True)
class Org:
    """A tenant: every other object belongs to exactly one."""

    id: UUID
    name: str
    created_at: datetime


@attrs.frozen(kw_only=True)
class Principal:
    """Who is calling: the organisation and role a verified token grants."""

    token_id: UUID
    org_id: UUID
    role: AccessRole


@attrs.frozen(kw_only=True)
class Conversation:
    """A thread that holds chat sessions and their messages.

    `title` is None until someone names it: the user (at create or later), or the service
    after the conversation's first reply (domain/titles.py).
    """

    id: UUID
    org_id: UUID
    title: str | None
    is_archived: bool
    created_at: datetime
    updated_at: datetime

    def touched(self, at: datetime) -> Conversation:
        """The conversation after activity at `at` (it moves up the list)."""
        return attrs.evolve(self, updated_at=max(at, self.updated_at))


@attrs.frozen(kw_only=True)
class GenerationParams:
    """Sampling settings a chat session asks its model for; None = the model's default."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None


class ContextScope(enum.Enum):
    """Which earlier messages a session's model is shown."""

    SESSION = "session"  # the session's own messages
    CONVERSATION = "conversation"  # every earlier message of the conversation, all sessions


@attrs.frozen(kw_only=True)
class ChatSession:
    """A conversation's binding to one language model, with its own state machine."""

    id: UUID
    org_id: UUID
    conversation_id: UUID
    model_id: UUID
    status: SessionState
    created_at: datetime
    updated_at: datetime
    system_prompt: str | None = None
    params: GenerationParams = GenerationParams()
    context: ContextScope = ContextScope.SESSION
    # The last message of the session's current branch (domain/branches.py); None before its
    # first message. Stored with the version, like the status.
    head_id: UUID | None = None
    # Grows by one with every transition. A store writes a session only over the version
    # before it, so a writer holding a stale copy fails instead of overwriting a newer state.
    version: int = 1

    def apply(self, event: SessionInput, at: datetime) -> ChatSession:
        """The session after `event`, one version on; InvalidTransition when its state does
        not allow it."""
        return attrs.evolve(
            self, status=next_state(self.status, event), updated_at=at, version=self.version + 1
        )

    def at_head(self, head_id: UUID) -> ChatSession:
        """The session whose current branch now ends at `head_id` (stored with the version of
        the transition it comes with)."""
        return attrs.evolve(self, head_id=head_id)

    def moved_to(self, head_id: UUID, at: datetime) -> ChatSession:
        """The session switched to another branch, one version on; its state is unchanged."""
        return attrs.evolve(self, head_id=head_id, updated_at=at, version=self.version + 1)


@attrs.frozen(kw_only=True)
class Usage:
    """Tokens a reply consumed; `estimated` when counted by us rather than the provider."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@attrs.frozen(kw_only=True)
class Latency:
    """How long a reply took: to its first chunk (None if none came) and in all."""

    first_token_ms: int | None
    total_ms: int


@attrs.frozen(kw_only=True)
class Message:
    """One turn of a chat session: the user's text or the model's reply."""

    id: UUID
    org_id: UUID
    conversation_id: UUID
    chat_session_id: UUID
    role: MessageRole
    content: str
    status: MessageStatus
    model_id: UUID | None
    created_at: datetime
    updated_at: datetime
    finish_reason: str | None = None
    usage: Usage | None = None
    error_code: str | None = None  # why a reply failed or stopped early, as its stream said
    error_message: str | None = None
    latency: Latency | None = None
    # The message it follows in its session's tree of branches (domain/branches.py): a reply
    # follows the user message it answers, a user message the reply before it; None for a
    # session's first message (and for each edit of it).
    parent_id: UUID | None = None

    def with_content(self, content: str, at: datetime) -> Message:
        """The reply with the text generated so far."""
        return attrs.evolve(self, content=content, updated_at=at)

    def finished(
        self,
        *,
        content: str,
        status: MessageStatus,
        finish_reason: str,
        usage: Usage | None,
        at: datetime,
        error: tuple[str, str] | None = None,
        latency: Latency | None = None,
    ) -> Message:
        """The reply once generation has ended, whatever the outcome."""
        return attrs.evolve(
            self,
            content=content,
            status=status,
            finish_reason=finish_reason,
            usage=usage,
            updated_at=at,
            error_code=error[0] if error else None,
            error_message=error[1] if error else None,
            latency=latency,
        )


T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """A slice of an ordered listing, and whether more follows it."""

    items: tuple[T, ...]
    limit: int
    offset: int
    has_more: bool
