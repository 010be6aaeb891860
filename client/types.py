"""What the API answers, as typed values: conversations, sessions, messages, models, usage.

The client's own classes, decoded from the JSON the server documents at /openapi.json; it
shares no code with the service. Fields the server adds later are ignored, so an older client
keeps working against a newer server.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

import attrs


class SessionStatus(enum.StrEnum):
    """Where a chat session is: taking messages, writing a reply, or closed for good."""

    ACTIVE = "active"
    RESPONDING = "responding"
    COMPLETED = "completed"


class ContextScope(enum.StrEnum):
    """What a session's model is shown: its own messages, or the whole conversation's."""

    SESSION = "session"
    CONVERSATION = "conversation"


class Role(enum.StrEnum):
    """Who wrote a message."""

    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(enum.StrEnum):
    """How a stored message ended; user messages are always `completed`."""

    COMPLETED = "completed"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INCOMPLETE = "incomplete"  # the service stopped or crashed while writing it


class Multitask(enum.StrEnum):
    """What a message sent while the session is still replying does."""

    ENQUEUE = "enqueue"  # waits its turn (the server's default)
    REJECT = "reject"  # SessionBusyError
    INTERRUPT = "interrupt"  # cancels the running reply first


@attrs.frozen(kw_only=True)
class Conversation:
    """A titled thread holding chat sessions and their messages."""

    id: UUID
    title: str
    is_archived: bool
    created_at: datetime
    updated_at: datetime


@attrs.frozen(kw_only=True)
class GenerationParams:
    """Sampling settings a session asks its model for; None leaves one to the model."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None


@attrs.frozen(kw_only=True)
class ChatSession:
    """A conversation's binding to one model, with its live status."""

    id: UUID
    conversation_id: UUID
    model_id: UUID
    status: SessionStatus
    created_at: datetime
    updated_at: datetime
    system_prompt: str | None = None
    params: GenerationParams = GenerationParams()
    context: ContextScope = ContextScope.SESSION
    # The last message of the session's current branch (what its next message follows);
    # None before its first message.
    head_id: UUID | None = None


@attrs.frozen(kw_only=True)
class ConversationWithSessions:
    """A conversation and its chat sessions, oldest first."""

    id: UUID
    title: str
    is_archived: bool
    created_at: datetime
    updated_at: datetime
    sessions: tuple[ChatSession, ...]


@attrs.frozen(kw_only=True)
class Usage:
    """Tokens a reply consumed; `estimated` when the service counted them itself."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool


@attrs.frozen(kw_only=True)
class Latency:
    """How long a reply took, in milliseconds: to its first chunk (None if none came), in all."""

    first_token_ms: int | None
    total_ms: int


@attrs.frozen(kw_only=True)
class ReplyFailure:
    """Why a reply failed or stopped early, as its stream's `error` event said."""

    code: str
    message: str


@attrs.frozen(kw_only=True)
class Message:
    """One stored turn of a chat session: the user's text or the model's reply."""

    id: UUID
    conversation_id: UUID
    chat_session_id: UUID
    role: Role
    content: str
    status: MessageStatus
    model_id: UUID | None
    created_at: datetime
    updated_at: datetime
    finish_reason: str | None = None
    usage: Usage | None = None
    latency: Latency | None = None
    error: ReplyFailure | None = None
    # Branches: the message it follows in its session (None for a session's first), and its
    # place among the alternatives there (regenerated replies, edited questions).
    parent_id: UUID | None = None
    sibling_count: int = 1
    sibling_index: int = 1


@attrs.frozen(kw_only=True)
class Model:
    """A model this organisation's sessions can use."""

    id: UUID
    name: str
    provider: str
    context_window: int
    max_output_tokens: int
    scope: str  # `global`, or `org`: the organisation's own


@attrs.frozen(kw_only=True)
class ModelUsage:
    """What one model's replies cost over a period; `name` is None for a model now gone."""

    model_id: UUID
    name: str | None
    replies: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated_replies: int


@attrs.frozen(kw_only=True)
class UsageTotal:
    """All models' replies and tokens over a period."""

    replies: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@attrs.frozen(kw_only=True)
class UsageReport:
    """What replies cost an organisation from `start` to `end`, per model and in all."""

    start: datetime
    end: datetime
    models: tuple[ModelUsage, ...]
    total: UsageTotal


@attrs.frozen(kw_only=True)
class SnippetPart:
    """A piece of a snippet; `highlight` when it is a match of the query."""

    text: str
    highlight: bool


@attrs.frozen(kw_only=True)
class Snippet:
    """A short piece of the best matching message (`message_id`), or of the title (None),
    in parts: joined, they are the text to show, the query's matches marked `highlight`."""

    message_id: UUID | None
    parts: tuple[SnippetPart, ...]

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts)


@attrs.frozen(kw_only=True)
class SearchResult:
    """A conversation a search found: whether its title matches, how many of its messages
    do (the first 20 of them in `message_ids`, oldest first), and a snippet."""

    conversation: Conversation
    title_matches: bool
    message_count: int
    message_ids: tuple[UUID, ...]
    snippet: Snippet


T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of a listing, and whether more follows it."""

    items: tuple[T, ...]
    limit: int
    offset: int
    has_more: bool
