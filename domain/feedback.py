"""What people think of the model's replies: a rating, up or down, and a comment."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

import attrs

from conversation_service.domain.errors import InvalidField
from conversation_service.domain.model import Message, MessageRole
from conversation_service.domain.rules import InputLimits, check_text


class Rating(enum.Enum):
    """A reply was good (up) or not (down)."""

    UP = "up"
    DOWN = "down"


@attrs.frozen(kw_only=True)
class Feedback:
    """The feedback on one assistant reply: at most one per reply, replaced when given again."""

    message_id: UUID
    org_id: UUID
    conversation_id: UUID
    rating: Rating
    comment: str | None
    created_at: datetime  # when feedback was first given on this reply
    updated_at: datetime  # when it was last given


def check_comment(comment: str | None, limits: InputLimits) -> str | None:
    """A feedback comment as stored (None: no comment); InvalidField naming `comment` for
    an empty, blank or too long one."""
    return None if comment is None else check_text("comment", comment, limits.max_comment_chars)


def give_feedback(
    *,
    message: Message,
    rating: Rating,
    comment: str | None,
    at: datetime,
    previous: Feedback | None,
    limits: InputLimits,
) -> Feedback:
    """The feedback that replaces `previous` (if any) on `message`.

    InvalidField naming `message_id` for a message that is not an assistant reply, or
    `comment` for an empty or too long comment.
    """
    if message.role is not MessageRole.ASSISTANT:
        raise InvalidField("message_id", "must name an assistant reply: feedback rates replies")
    return Feedback(
        message_id=message.id,
        org_id=message.org_id,
        conversation_id=message.conversation_id,
        rating=rating,
        comment=check_comment(comment, limits),
        created_at=at if previous is None else previous.created_at,
        updated_at=at,
    )
