"""The SQL store's part for conversations people keep: changes, deletion, feedback, generated
titles, export and import. SqlStore inherits it; adapters/memory_keeping.py is its twin.

An import is one work item, hence one transaction: all of it is stored or none. It reads the
records batch by batch (IDS_PER_BATCH), looks up which of the batch's ids are taken, and
inserts with one statement per kind of row, so its cost grows with the file and its memory
with the number of conversations and sessions, not of messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from conversation_service.adapters.sql import keeping_queries as k
from conversation_service.adapters.sql import queries as q
from conversation_service.adapters.sql.rows import format_timestamp, from_row, to_row
from conversation_service.adapters.sql.statements import Statements
from conversation_service.adapters.sql.storage_actor import StorageActor
from conversation_service.domain.feedback import Feedback
from conversation_service.domain.model import ChatSession, Conversation, Message
from conversation_service.domain.transfer import ImportReport, MessageRecord, TransferRecord
from conversation_service.ports.storage import MessageBatch, ModelFeedback


class KeepingSql:
    """Methods over SqlStore's storage actor (declared here for the type checker)."""

    _actor: StorageActor

    async def update_conversation(
        self,
        org_id: UUID,
        conversation_id: UUID,
        *,
        title: str | None,
        is_archived: bool | None,
        at: datetime,
    ) -> Conversation | None:
        values = {
            "id": str(conversation_id),
            "org_id": str(org_id),
            "title": title,
            "is_archived": is_archived,
            "at": format_timestamp(at),
        }
        rows = await self._rows(k.UPDATE_CONVERSATION, values)
        return from_row(Conversation, rows[0]) if rows else None

    async def set_generated_title(self, org_id: UUID, conversation_id: UUID, title: str) -> bool:
        values = {"id": str(conversation_id), "org_id": str(org_id), "title": title}
        return bool(await self._rows(k.SET_GENERATED_TITLE, values))

    async def delete_conversation(
        self, org_id: UUID, conversation_id: UUID
    ) -> Sequence[UUID] | None:
        names = {"id": str(conversation_id), "org_id": str(org_id)}

        async def delete(connection: Statements) -> list[str] | None:
            sessions = await connection.fetch_all(k.SESSION_IDS_OF_CONVERSATION, names)
            for sql in k.DELETE_CONVERSATION:
                await connection.execute(sql, names)
            if await connection.fetch_val(k.DELETE_CONVERSATION_ROW, names) is None:
                return None  # nothing of it existed: the statements above deleted nothing
            deleted = [row["id"] for row in sessions]
            for named in [str(conversation_id), *deleted]:
                forget = {"scope": f"{org_id}/%", "named": f"%{named}%"}
                await connection.execute(k.FORGET_KEYS_NAMING, forget)
            return deleted

        found: list[str] | None = await self._actor.call(delete)
        return None if found is None else [UUID(session_id) for session_id in found]

    async def get_feedback(self, org_id: UUID, message_id: UUID) -> Feedback | None:
        values = {"message_id": str(message_id), "org_id": str(org_id)}
        rows = await self._rows(k.GET_FEEDBACK, values)
        return from_row(Feedback, rows[0]) if rows else None

    async def put_feedback(self, feedback: Feedback) -> None:
        row = to_row(feedback)

        async def put(connection: Statements) -> None:
            await connection.execute(k.PUT_FEEDBACK, row)

        await self._actor.call(put)

    async def delete_feedback(self, org_id: UUID, message_id: UUID) -> bool:
        values = {"message_id": str(message_id), "org_id": str(org_id)}
        return bool(await self._rows(k.DELETE_FEEDBACK, values))

    async def feedback_for(
        self, org_id: UUID, message_ids: Sequence[UUID]
    ) -> Mapping[UUID, Feedback]:
        found: dict[UUID, Feedback] = {}
        ids = [str(message_id) for message_id in message_ids]
        size = k.IDS_PER_LOOKUP
        for start in range(0, len(ids), size):
            values = {"org_id": str(org_id), **_padded(ids[start : start + size], size)}
            for row in await self._rows(k.FEEDBACK_FOR, values):
                feedback = from_row(Feedback, row)
                found[feedback.message_id] = feedback
        return found

    async def feedback_by_model(
        self, org_id: UUID, *, start: datetime, end: datetime
    ) -> Sequence[ModelFeedback]:
        values = {
            "org_id": str(org_id),
            "start": format_timestamp(start),
            "end": format_timestamp(end),
        }
        rows = await self._rows(k.FEEDBACK_BY_MODEL, values)
        return [from_row(ModelFeedback, row) for row in rows]

    async def export_conversations(
        self, org_id: UUID, *, after: Conversation | None, limit: int
    ) -> Sequence[Conversation]:
        values: dict[str, Any] = {"org_id": str(org_id), "limit": limit}
        sql = k.EXPORT_CONVERSATIONS
        if after is not None:
            sql = k.EXPORT_CONVERSATIONS_AFTER
            values.update(created_at=format_timestamp(after.created_at), id=str(after.id))
        return [from_row(Conversation, row) for row in await self._rows(sql, values)]

    async def export_messages(
        self, org_id: UUID, conversation_id: UUID, *, after: int | None, limit: int
    ) -> MessageBatch:
        values = {
            "conversation_id": str(conversation_id),
            "org_id": str(org_id),
            "after": after or 0,  # seq starts at 1 on both dialects
            "limit": limit,
        }
        rows = await self._rows(k.EXPORT_MESSAGES, values)
        records = tuple(_message_record(row) for row in rows)
        more = len(rows) == limit
        return MessageBatch(records=records, after=int(rows[-1]["seq"]) if more else None)

    async def import_records(
        self,
        org_id: UUID,
        records: Callable[[], Iterable[TransferRecord]],
        *,
        new_id: Callable[[], UUID],
    ) -> ImportReport:
        async def store_all(connection: Statements) -> ImportReport:
            batch: list[TransferRecord] = []
            importing = _Import(connection, new_id)
            for record in records():
                batch.append(record)
                if len(batch) == k.IDS_PER_BATCH:
                    await importing.store(batch)
                    batch = []
            await importing.store(batch)
            await importing.finish()
            return importing.report()

        report: ImportReport = await self._actor.call(store_all)
        return report

    async def _rows(self, sql: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        async def work(connection: Statements) -> list[dict[str, Any]]:
            return await connection.fetch_all(sql, values)

        rows: list[dict[str, Any]] = await self._actor.call(work)
        return rows


class _Import:
    """One import's state inside its transaction: the ids it changed, what it stored."""

    def __init__(self, connection: Statements, new_id: Callable[[], UUID]) -> None:
        self._connection = connection
        self._new_id = new_id
        self._conversations: dict[UUID, UUID] = {}  # id in the file -> id stored
        self._sessions: dict[UUID, UUID] = {}
        self._messages: dict[UUID, UUID] = {}  # those renamed: parents and heads follow them
        self._heads: dict[str, UUID] = {}  # session as stored -> its head in the file
        self._counts = {"messages": 0, "feedback": 0, "new_ids": 0}

    async def store(self, batch: list[TransferRecord]) -> None:
        """Store a batch: ids that are taken renamed, then rows inserted in file order, one
        statement for each run of rows of the same table."""
        taken = {
            table: await self._taken(table, [str(r.id) for r in batch if isinstance(r, kind)])
            for table, kind in (("conversations", Conversation), ("chat_sessions", ChatSession))
        }
        taken["messages"] = await self._taken(
            "messages", [str(r.message.id) for r in batch if isinstance(r, MessageRecord)]
        )
        runs: list[tuple[str, list[dict[str, Any]]]] = []
        feedback: list[dict[str, Any]] = []
        for record in batch:
            table, row = self._row(record, taken)
            if runs and runs[-1][0] == table:
                runs[-1][1].append(row)
            else:
                runs.append((table, [row]))
            if isinstance(record, MessageRecord) and record.feedback is not None:
                feedback.append(
                    {
                        **to_row(record.feedback),
                        "message_id": row["id"],
                        "conversation_id": row["conversation_id"],
                    }
                )
        for table, rows in runs:
            await self._connection.execute_many(_INSERTS[table], rows)
        if feedback:
            await self._connection.execute_many(k.INSERT_FEEDBACK, feedback)
            self._counts["feedback"] += len(feedback)

    def _row(
        self, record: TransferRecord, taken: Mapping[str, set[str]]
    ) -> tuple[str, dict[str, Any]]:
        match record:
            case Conversation():
                row = to_row(record)
                row["id"] = self._renamed(record.id, taken["conversations"], self._conversations)
                return "conversations", row
            case ChatSession():
                row = to_row(record)
                row["id"] = self._renamed(record.id, taken["chat_sessions"], self._sessions)
                row["conversation_id"] = str(self._conversations[record.conversation_id])
                if record.head_id is not None:
                    self._heads[row["id"]] = record.head_id  # renamed, if it is, later
                return "chat_sessions", row
            case MessageRecord():
                message: Message = record.message
                row = to_row(message)
                row["id"] = self._renamed(message.id, taken["messages"], None)
                if row["id"] != str(message.id):
                    self._messages[message.id] = UUID(row["id"])
                row["conversation_id"] = str(self._conversations[message.conversation_id])
                row["chat_session_id"] = str(self._sessions[message.chat_session_id])
                parent = message.parent_id
                if parent is not None:
                    row["parent_id"] = str(self._messages.get(parent, parent))
                self._counts["messages"] += 1
                return "messages", row

    def _renamed(self, old: UUID, taken: set[str], kept: dict[UUID, UUID] | None) -> str:
        new = old
        if str(old) in taken:
            new = self._new_id()
            self._counts["new_ids"] += 1
        if kept is not None:
            kept[old] = new
        return str(new)

    async def finish(self) -> None:
        """Point the sessions whose head was renamed at its new id (a head comes after its
        session in the file, so its session was stored with the old one)."""
        moved = [
            {"id": session_id, "head_id": str(self._messages[head])}
            for session_id, head in self._heads.items()
            if head in self._messages
        ]
        if moved:
            await self._connection.execute_many(k.SET_IMPORTED_HEAD, moved)

    async def _taken(self, table: str, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        found = await self._connection.fetch_all(k.TAKEN_IDS[table], _padded(ids, k.IDS_PER_BATCH))
        return {row["id"] for row in found}

    def report(self) -> ImportReport:
        return ImportReport(
            conversations=len(self._conversations),
            sessions=len(self._sessions),
            messages=self._counts["messages"],
            feedback=self._counts["feedback"],
            new_ids=self._counts["new_ids"],
            conversation_ids=tuple(self._conversations.items()),
        )


_INSERTS = {
    "conversations": q.INSERT_CONVERSATION,
    "chat_sessions": q.INSERT_SESSION,
    "messages": q.INSERT_MESSAGE,
}


def _padded(ids: list[str], size: int) -> dict[str, str]:
    """`:id0..:id<size-1>` for a lookup of `size` ids, the last repeated to fill it."""
    filled = ids + [ids[-1]] * (size - len(ids))
    return {f"id{n}": value for n, value in enumerate(filled)}


def _message_record(row: dict[str, Any]) -> MessageRecord:
    message = from_row(Message, {column: row[column] for column in q.MESSAGE_COLUMNS})
    if row["feedback_rating"] is None:
        return MessageRecord(message=message)
    feedback = {
        "message_id": row["id"],
        "org_id": row["org_id"],
        "conversation_id": row["conversation_id"],
        **{column: row[alias] for column, alias in k.FEEDBACK_AS.items()},
    }
    return MessageRecord(message=message, feedback=from_row(Feedback, feedback))
