"""Conversations moved between organisations or servers: what an export holds, and what an
import makes of it.

An export is a sequence of records: each conversation, then its chat sessions, then its
messages (each with its feedback), in the order they were stored. An import recreates them
in another organisation exactly, but for what only a live server can hold: a reply that was
still being written is stored as a restart leaves one (incomplete, interrupted), and its
session as able to take messages again.
"""

from __future__ import annotations

from uuid import UUID

import attrs

from conversation_service.domain.feedback import Feedback
from conversation_service.domain.model import ChatSession, Conversation, Message, MessageStatus
from conversation_service.domain.replies import INTERRUPTED, ReplyOutcome
from conversation_service.domain.session_machine import SessionInput, SessionState, next_state


@attrs.frozen(kw_only=True)
class MessageRecord:
    """A message as exported: with the feedback on it, if any."""

    message: Message
    feedback: Feedback | None = None


TransferRecord = Conversation | ChatSession | MessageRecord


@attrs.frozen(kw_only=True)
class ImportReport:
    """What an import stored."""

    conversations: int
    sessions: int
    messages: int
    feedback: int
    new_ids: int  # objects stored under a new id, their own being taken already
    # (id in the file, id stored) of each conversation, in the file's order
    conversation_ids: tuple[tuple[UUID, UUID], ...]


_INTERRUPTED = ReplyOutcome.interrupted(*INTERRUPTED)


def as_imported(record: TransferRecord, org_id: UUID) -> TransferRecord:
    """`record` as an import into organisation `org_id` stores it (ids still the file's)."""
    match record:
        case Conversation():
            return attrs.evolve(record, org_id=org_id)
        case ChatSession():
            status = record.status
            if status is SessionState.RESPONDING:  # its reply was cut off by the export
                status = next_state(status, SessionInput.RECOVER)
            return attrs.evolve(record, org_id=org_id, status=status, version=1)
        case MessageRecord():
            message = attrs.evolve(record.message, org_id=org_id)
            if message.status is MessageStatus.IN_PROGRESS:
                message = message.finished(
                    content=message.content,
                    status=_INTERRUPTED.status,
                    finish_reason=_INTERRUPTED.finish_reason,
                    usage=message.usage,
                    at=message.updated_at,
                    error=_INTERRUPTED.error,
                    latency=message.latency,
                )
            feedback = record.feedback
            if feedback is not None:
                feedback = attrs.evolve(feedback, org_id=org_id)
            return MessageRecord(message=message, feedback=feedback)
