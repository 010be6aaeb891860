"""The in-memory store's part for conversations people keep: changes, deletion, feedback,
generated titles, export and import. InMemoryStore inherits it; the SQL store's twin is
adapters/sql/keeping_store.py, and tests/adapters hold both to the same contract."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

import attrs

from conversation_service.domain.feedback import Feedback, Rating
from conversation_service.domain.model import ChatSession, Conversation, Message, MessageStatus
from conversation_service.domain.transfer import ImportReport, MessageRecord, TransferRecord
from conversation_service.ports.storage import (
    IdempotentResult,
    MessageBatch,
    ModelFeedback,
    StorageUnavailable,
)


class KeepingInMemory:
    """Methods over InMemoryStore's dictionaries (declared here for the type checker)."""

    _conversations: dict[UUID, Conversation]
    _sessions: dict[UUID, ChatSession]
    _messages: dict[UUID, Message]  # insertion order is message order
    _keys: dict[tuple[str, str], tuple[datetime, IdempotentResult]]
    _feedback: dict[UUID, Feedback]  # by message id
    _replying: dict[UUID, UUID]  # a session's latest reply stored in progress

    def _note_reply(self, message: Message) -> None:
        if message.status is MessageStatus.IN_PROGRESS:
            self._replying[message.chat_session_id] = message.id

    def _conversation(self, org_id: UUID, conversation_id: UUID) -> Conversation | None:
        found = self._conversations.get(conversation_id)
        return found if found is not None and found.org_id == org_id else None

    def _conversation_messages(self, org_id: UUID, conversation_id: UUID) -> list[Message]:
        return [
            m
            for m in self._messages.values()
            if m.org_id == org_id and m.conversation_id == conversation_id
        ]

    async def update_conversation(
        self,
        org_id: UUID,
        conversation_id: UUID,
        *,
        title: str | None,
        is_archived: bool | None,
        at: datetime,
    ) -> Conversation | None:
        found = self._conversation(org_id, conversation_id)
        if found is None:
            return None
        changed = attrs.evolve(
            found,
            title=found.title if title is None else title,
            is_archived=found.is_archived if is_archived is None else is_archived,
        ).touched(at)
        self._conversations[conversation_id] = changed
        return changed

    async def set_generated_title(self, org_id: UUID, conversation_id: UUID, title: str) -> bool:
        found = self._conversation(org_id, conversation_id)
        if found is None or found.title is not None:
            return False
        self._conversations[conversation_id] = attrs.evolve(found, title=title)
        return True

    async def delete_conversation(
        self, org_id: UUID, conversation_id: UUID
    ) -> Sequence[UUID] | None:
        if self._conversation(org_id, conversation_id) is None:
            return None
        sessions = [
            s.id
            for s in self._sessions.values()
            if s.org_id == org_id and s.conversation_id == conversation_id
        ]
        for message in self._conversation_messages(org_id, conversation_id):
            del self._messages[message.id]
            self._feedback.pop(message.id, None)
        for session_id in sessions:
            del self._sessions[session_id]
        del self._conversations[conversation_id]
        named = [str(conversation_id), *map(str, sessions)]
        for scope, key in list(self._keys):
            body = self._keys[(scope, key)][1].body or ""
            if scope.startswith(f"{org_id}/") and any(name in body for name in named):
                del self._keys[(scope, key)]
        return sessions

    async def get_feedback(self, org_id: UUID, message_id: UUID) -> Feedback | None:
        found = self._feedback.get(message_id)
        return found if found is not None and found.org_id == org_id else None

    async def put_feedback(self, feedback: Feedback) -> None:
        message = self._messages.get(feedback.message_id)
        if message is None or message.org_id != feedback.org_id:
            raise StorageUnavailable(f"message {feedback.message_id} does not exist")
        self._feedback[feedback.message_id] = feedback

    async def delete_feedback(self, org_id: UUID, message_id: UUID) -> bool:
        if await self.get_feedback(org_id, message_id) is None:
            return False
        del self._feedback[message_id]
        return True

    async def feedback_for(
        self, org_id: UUID, message_ids: Sequence[UUID]
    ) -> Mapping[UUID, Feedback]:
        found = {m: self._feedback.get(m) for m in message_ids}
        return {m: f for m, f in found.items() if f is not None and f.org_id == org_id}

    async def feedback_by_model(
        self, org_id: UUID, *, start: datetime, end: datetime
    ) -> Sequence[ModelFeedback]:
        totals: dict[UUID, list[int]] = {}
        for feedback in self._feedback.values():
            message = self._messages.get(feedback.message_id)
            if feedback.org_id != org_id or message is None or message.model_id is None:
                continue
            if not start <= message.created_at < end:
                continue
            row = totals.setdefault(message.model_id, [0, 0])
            row[0 if feedback.rating is Rating.UP else 1] += 1
        return [
            ModelFeedback(model_id=model_id, up=up, down=down)
            for model_id, (up, down) in sorted(totals.items(), key=lambda kv: str(kv[0]))
        ]

    async def export_conversations(
        self, org_id: UUID, *, after: Conversation | None, limit: int
    ) -> Sequence[Conversation]:
        def order(c: Conversation) -> tuple[datetime, str]:
            return c.created_at, str(c.id)

        mine = sorted((c for c in self._conversations.values() if c.org_id == org_id), key=order)
        if after is not None:
            mine = [c for c in mine if order(c) > order(after)]
        return mine[:limit]

    async def export_messages(
        self, org_id: UUID, conversation_id: UUID, *, after: int | None, limit: int
    ) -> MessageBatch:
        start = after or 0
        mine = self._conversation_messages(org_id, conversation_id)
        chunk = mine[start : start + limit]
        records = tuple(MessageRecord(message=m, feedback=self._feedback.get(m.id)) for m in chunk)
        more = start + len(chunk) < len(mine)
        return MessageBatch(records=records, after=start + len(chunk) if more else None)

    async def import_records(
        self,
        org_id: UUID,
        records: Callable[[], Iterable[TransferRecord]],
        *,
        new_id: Callable[[], UUID],
    ) -> ImportReport:
        # Everything is remapped into new dictionaries first: all or nothing, as in SQL.
        conversations: dict[UUID, Conversation] = {}
        sessions: dict[UUID, ChatSession] = {}
        messages: dict[UUID, Message] = {}
        feedback: dict[UUID, Feedback] = {}
        conversation_ids: dict[UUID, UUID] = {}  # id in the file -> id stored
        session_ids: dict[UUID, UUID] = {}
        message_ids: dict[UUID, UUID] = {}  # those renamed: parents and heads follow them
        renamed = 0

        def fresh(old: UUID, stored: Mapping[UUID, object], added: Mapping[UUID, object]) -> UUID:
            nonlocal renamed
            if old not in stored and old not in added:
                return old
            renamed += 1
            return new_id()

        for record in records():
            match record:
                case Conversation():
                    new = fresh(record.id, self._conversations, conversations)
                    conversation_ids[record.id] = new
                    conversations[new] = attrs.evolve(record, id=new)
                case ChatSession():
                    new = fresh(record.id, self._sessions, sessions)
                    session_ids[record.id] = new
                    sessions[new] = attrs.evolve(
                        record, id=new, conversation_id=conversation_ids[record.conversation_id]
                    )
                case MessageRecord():
                    message = record.message
                    new = fresh(message.id, self._messages, messages)
                    if new != message.id:
                        message_ids[message.id] = new
                    parent = message.parent_id
                    message = attrs.evolve(
                        message,
                        id=new,
                        conversation_id=conversation_ids[message.conversation_id],
                        chat_session_id=session_ids[message.chat_session_id],
                        parent_id=message_ids.get(parent, parent) if parent else None,
                    )
                    messages[new] = message
                    if record.feedback is not None:
                        feedback[new] = attrs.evolve(
                            record.feedback, message_id=new, conversation_id=message.conversation_id
                        )
        for new, session in sessions.items():  # a head comes after its session: now known
            if session.head_id in message_ids:
                sessions[new] = attrs.evolve(session, head_id=message_ids[session.head_id])
        self._conversations.update(conversations)
        self._sessions.update(sessions)
        self._messages.update(messages)
        for message in messages.values():
            self._note_reply(message)
        self._feedback.update(feedback)
        return ImportReport(
            conversations=len(conversations),
            sessions=len(sessions),
            messages=len(messages),
            feedback=len(feedback),
            new_ids=renamed,
            conversation_ids=tuple(conversation_ids.items()),
        )
