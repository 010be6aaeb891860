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

from conversation_service.domain.errors import InvalidField
from conversation_service.domain.feedback import Feedback
from conversation_service.domain.model import (
    ChatSession,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
)
from conversation_service.domain.replies import INTERRUPTED, ReplyOutcome
from conversation_service.domain.rules import InputLimits, check_params, check_text
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


class ImportCheck:
    """Checks an import's records one at a time, in the file's order; `take` raises
    InvalidField naming the field at fault.

    Each object appears once; each session after its conversation; each message after its
    session, in the same conversation, and after its parent (a message of the same session);
    each session's head a message of that session, after it (`heads_missing` says which never
    came); texts as the API takes them (titles, system prompts, user messages and comments
    within the service's limits; no text with NUL, which no database stores); sampling
    parameters in range. It keeps the ids it has seen: a few dozen bytes per message.
    """

    def __init__(self, limits: InputLimits) -> None:
        self._limits = limits
        self._conversations: set[UUID] = set()
        self._sessions: dict[UUID, UUID] = {}  # session -> its conversation
        self._messages: dict[bytes, bytes] = {}  # message -> its session
        self._heads: dict[UUID, UUID] = {}  # session -> its head, until the head comes

    def take(self, record: TransferRecord) -> None:
        limits = self._limits
        match record:
            case Conversation():
                if record.id in self._conversations:
                    raise InvalidField("id", "this conversation appears twice")
                if record.title is not None:
                    check_text("title", record.title, limits.max_title_chars)
                self._conversations.add(record.id)
            case ChatSession():
                if record.id in self._sessions:
                    raise InvalidField("id", "this session appears twice")
                if record.conversation_id not in self._conversations:
                    raise InvalidField("conversation_id", "no conversation with this id before")
                if record.system_prompt is not None:
                    check_text(
                        "system_prompt", record.system_prompt, limits.max_system_prompt_chars
                    )
                check_params(record.params, None)
                self._sessions[record.id] = record.conversation_id
                if record.head_id is not None:
                    self._heads[record.id] = record.head_id
            case MessageRecord():
                self._take_message(record)

    def _take_message(self, record: MessageRecord) -> None:
        message = record.message
        if message.id.bytes in self._messages:
            raise InvalidField("id", "this message appears twice")
        if message.chat_session_id not in self._sessions:
            raise InvalidField("chat_session_id", "no session with this id before")
        if self._sessions[message.chat_session_id] != message.conversation_id:
            raise InvalidField("conversation_id", "is not the conversation of its session")
        session = message.chat_session_id.bytes
        if message.parent_id is not None and self._messages.get(message.parent_id.bytes) != session:
            raise InvalidField("parent_id", "no message of this session with this id before")
        if message.role is MessageRole.USER:
            check_text("content", message.content, self._limits.max_message_chars)
        elif "\x00" in message.content:
            raise InvalidField("content", "must not contain NUL characters")
        for field, text in (
            ("finish_reason", message.finish_reason),
            ("error.code", message.error_code),
            ("error.message", message.error_message),
        ):
            if text is not None and "\x00" in text:
                raise InvalidField(field, "must not contain NUL characters")
        if record.feedback is not None:
            if message.role is not MessageRole.ASSISTANT:
                raise InvalidField("feedback", "only an assistant reply takes feedback")
            if record.feedback.comment is not None:
                check_text(
                    "feedback.comment", record.feedback.comment, self._limits.max_comment_chars
                )
        self._messages[message.id.bytes] = session
        if self._heads.get(message.chat_session_id) == message.id:
            del self._heads[message.chat_session_id]

    def heads_missing(self) -> list[UUID]:
        """The sessions whose head_id named no message of theirs (so far)."""
        return list(self._heads)
