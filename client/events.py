"""A reply's stream as typed events, and the reply it adds up to.

Event ids are positions in the reply's text (README, "Streams"): `start` is 0, a content
event's id is the text's length once its chunk is added, `end` the final length + 2. The
client resumes a dropped stream after the last id it handed out, so each event is seen once.
"""

from __future__ import annotations

from uuid import UUID

import attrs

from conversation_service.client.types import ReplyFailure, Usage


@attrs.frozen(kw_only=True)
class StartEvent:
    """The reply begins: its message id, the message it answers, the session's model."""

    id: int
    message_id: UUID
    user_message_id: UUID | None
    chat_session_id: UUID
    model_id: UUID | None
    context_messages: int | None = None  # known while the reply is live, not on a replay
    trimmed_messages: int | None = None


@attrs.frozen(kw_only=True)
class ContentEvent:
    """A chunk of the reply's text."""

    id: int
    message_id: UUID
    text: str


@attrs.frozen(kw_only=True)
class ErrorEvent:
    """Why the reply could not be finished (iterating raises ReplyFailedError for it)."""

    id: int
    code: str
    message: str


@attrs.frozen(kw_only=True)
class EndEvent:
    """The reply's last event: why it ended and what it cost."""

    id: int
    message_id: UUID
    finish_reason: str  # stop, length, cancelled, error, or what a provider reports
    usage: Usage | None


StreamEvent = StartEvent | ContentEvent | EndEvent


@attrs.frozen(kw_only=True)
class Reply:
    """A finished reply as its stream told it: what the service stored for it.

    `id` is the reply's message id (as in `list_messages`); `content` is its text (all of it,
    unless the stream was attached `after` an event: then what followed it); `error` is set
    when the reply failed (its finish_reason is then `error`).
    """

    id: UUID
    chat_session_id: UUID
    user_message_id: UUID | None
    model_id: UUID | None
    content: str
    finish_reason: str
    usage: Usage | None
    error: ReplyFailure | None = None
