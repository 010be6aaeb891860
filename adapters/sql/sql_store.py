"""The SQL store: ConversationStore and AccessStore over a StorageActor.

It behaves like adapters.memory_store.InMemoryStore (ordering, org scoping, paging, the
conversation's updated_at moving forward on every new session or message), with two
differences a database brings: a duplicate id or token hash, or a session or message whose
parent does not exist, is refused with StorageUnavailable; and revoked tokens are not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from conversation_service.adapters.sql import queries as q
from conversation_service.adapters.sql import search_queries
from conversation_service.adapters.sql.dialects import SQLITE
from conversation_service.adapters.sql.keeping_store import KeepingSql
from conversation_service.adapters.sql.rows import format_timestamp, from_row, to_row
from conversation_service.adapters.sql.statements import Statements, Work
from conversation_service.adapters.sql.storage_actor import StorageActor
from conversation_service.domain.branches import ListedMessage
from conversation_service.domain.model import (
    AccessRole,
    ChatSession,
    ContextScope,
    Conversation,
    Message,
    Org,
    Page,
)
from conversation_service.domain.replies import INTERRUPTED, ReplyOutcome
from conversation_service.domain.search import MATCHED_IDS, SearchQuery
from conversation_service.domain.session_machine import SessionInput, SessionState, next_state
from conversation_service.ports.storage import (
    History,
    IdempotentResult,
    ModelUsage,
    SearchHit,
    StaleVersion,
    StorageUnavailable,
    StoredModel,
    TokenInfo,
)

T = TypeVar("T")

# What recovery writes; the same values as InMemoryStore.
_INTERRUPTED = ReplyOutcome.interrupted(*INTERRUPTED)
_RECOVERED_STATUS = next_state(SessionState.RESPONDING, SessionInput.RECOVER).value


class SqlStore(KeepingSql):
    """ConversationStore and AccessStore over SQL; get one from open_sql_store()."""

    def __init__(self, actor: StorageActor, *, dialect: str = SQLITE) -> None:
        self._actor = actor
        self._dialect = dialect  # only search's SQL differs (search_queries.py)

    @property
    def actor(self) -> StorageActor:
        """The storage actor, for adapters that share the store's one connection."""
        return self._actor

    # -- access -------------------------------------------------------------------------
    async def add_org(self, org: Org) -> None:
        await self._actor.call(_execute((q.INSERT_ORG, to_row(org))))

    async def get_org(self, org_id: UUID) -> Org | None:
        return await self._one(Org, q.GET_ORG, {"id": str(org_id)})

    async def count_orgs(self) -> int:
        count: int = await self._actor.call(_value(q.COUNT_ORGS, {}))
        return count

    async def add_token(
        self,
        *,
        token_id: UUID,
        org_id: UUID,
        role: AccessRole,
        token_hash: str,
        at: datetime,
        expires_at: datetime | None = None,
    ) -> None:
        row = {
            "id": str(token_id),
            "org_id": str(org_id),
            "role": role.value,
            "token_hash": token_hash,
            "created_at": format_timestamp(at),
            "expires_at": None if expires_at is None else format_timestamp(expires_at),
        }
        await self._actor.call(_execute((q.INSERT_TOKEN, row)))

    async def find_token(self, token_hash: str, at: datetime) -> TokenInfo | None:
        values = {"token_hash": token_hash, "at": format_timestamp(at)}
        return await self._one(TokenInfo, q.FIND_TOKEN, values)

    async def list_tokens(self, org_id: UUID) -> Sequence[TokenInfo]:
        return await self._all(TokenInfo, q.LIST_TOKENS, {"org_id": str(org_id)})

    async def revoke_token(self, token_id: UUID, at: datetime) -> TokenInfo | None:
        values = {"id": str(token_id), "at": format_timestamp(at)}
        await self._actor.call(_execute((q.REVOKE_TOKEN, values)))
        return await self._one(TokenInfo, q.GET_TOKEN, {"id": str(token_id)})

    # -- conversations ------------------------------------------------------------------
    async def add_conversation(self, conversation: Conversation) -> None:
        await self._actor.call(_execute((q.INSERT_CONVERSATION, to_row(conversation))))

    async def get_conversation(self, org_id: UUID, conversation_id: UUID) -> Conversation | None:
        values = {"id": str(conversation_id), "org_id": str(org_id)}
        return await self._one(Conversation, q.GET_CONVERSATION, values)

    async def list_conversations(
        self, org_id: UUID, *, is_archived: bool | None, limit: int, offset: int
    ) -> Page[Conversation]:
        """Newest `updated_at` first (ties: newest `created_at`, then id)."""
        if is_archived is None:
            return await self._page(
                Conversation, q.LIST_CONVERSATIONS, {"org_id": str(org_id)}, limit, offset
            )
        values = {"org_id": str(org_id), "is_archived": is_archived}
        return await self._page(
            Conversation, q.LIST_CONVERSATIONS_BY_ARCHIVED, values, limit, offset
        )

    # -- sessions -----------------------------------------------------------------------
    async def add_session(self, session: ChatSession) -> None:
        touch = _touch(session.conversation_id, session.created_at)
        await self._actor.call(_execute((q.INSERT_SESSION, to_row(session)), touch))

    async def update_session(self, session: ChatSession) -> None:
        """Store the session's status, updated_at and version over version - 1."""
        await self._actor.call(_versioned_session(session))

    async def get_session(self, org_id: UUID, session_id: UUID) -> ChatSession | None:
        values = {"id": str(session_id), "org_id": str(org_id)}
        return await self._one(ChatSession, q.GET_SESSION, values)

    async def list_sessions(self, org_id: UUID, conversation_id: UUID) -> Sequence[ChatSession]:
        """Oldest first."""
        values = {"conversation_id": str(conversation_id), "org_id": str(org_id)}
        return await self._all(ChatSession, q.LIST_SESSIONS, values)

    # -- messages -----------------------------------------------------------------------
    async def add_message(self, message: Message) -> None:
        """Append a message; messages keep the order in which they were added."""
        touch = _touch(message.conversation_id, message.created_at)
        await self._actor.call(_execute((q.INSERT_MESSAGE, to_row(message)), touch))

    async def update_message(self, message: Message) -> None:
        """Store a reply still in progress: content, status, usage, error, latency..."""
        await self._actor.call(_reply_update(message))

    async def begin_reply(
        self, user: Message | None, reply: Message, session: ChatSession, *, history_limit: int
    ) -> History:
        """What the model is shown, then the user's message, the reply in progress and the
        session: one transaction, one trip to the storage actor."""
        values: dict[str, Any] = {
            "org_id": str(session.org_id),
            "leaf_session": str(session.id),
            "limit": history_limit,
        }
        if session.context is ContextScope.CONVERSATION:
            read_sql = q.CONVERSATION_HISTORY
            values["conversation_id"] = str(session.conversation_id)
        else:
            read_sql = q.SESSION_HISTORY
        inserts = [] if user is None else [(q.INSERT_MESSAGE, to_row(user))]
        inserts.append((q.INSERT_MESSAGE, to_row(reply)))
        insert = _execute(*inserts, _touch(reply.conversation_id, reply.created_at))
        write = _together(insert, _versioned_session(session))

        async def begin(connection: Statements) -> list[dict[str, Any]]:
            if history_limit <= 0:  # the caller knows the history already
                await write(connection)
                return []
            if user is None:  # answered again: its branch, and what came before it
                names = {"id": str(reply.parent_id), "org_id": values["org_id"]}
                found = await connection.fetch_all(q.QUESTION, names)
                if not found:
                    raise StorageUnavailable(f"reply {reply.id} answers no stored message")
                start, before = found[0]["parent_id"], found[0]["seq"]
            else:
                start, before = _str(user.parent_id), _AFTER_EVERY_ROW
            rows = await connection.fetch_all(
                read_sql, {**values, "start": start, "before": before}
            )
            await write(connection)
            return rows

        rows = await self._actor.call(begin)
        total = rows[0]["shown_count"] if rows else 0
        messages = tuple(from_row(Message, row) for row in reversed(rows))
        return History(messages=messages, not_read=total - len(messages))

    async def end_reply(self, reply: Message, session: ChatSession) -> None:
        """The finished reply and the session, in one transaction."""
        await self._actor.call(_together(_reply_update(reply), _versioned_session(session)))

    async def recover_session(self, session: ChatSession) -> None:
        """One session's in-progress replies marked incomplete, the session stored."""
        values = {
            **_interrupted_values(format_timestamp(session.updated_at)),
            "chat_session_id": str(session.id),
            "org_id": str(session.org_id),
        }
        mark = _execute((q.MARK_SESSION_INTERRUPTED, values))
        await self._actor.call(_together(_versioned_session(session), mark))

    async def get_message(self, org_id: UUID, message_id: UUID) -> Message | None:
        values = {"id": str(message_id), "org_id": str(org_id)}
        return await self._one(Message, q.GET_MESSAGE, values)

    async def list_messages(
        self, org_id: UUID, conversation_id: UUID, *, limit: int, offset: int
    ) -> Page[Message]:
        """The conversation's messages in the order they were added (oldest first)."""
        values = {"conversation_id": str(conversation_id), "org_id": str(org_id)}
        return await self._page(Message, q.LIST_MESSAGES, values, limit, offset)

    async def list_branch(
        self,
        org_id: UUID,
        conversation_id: UUID,
        *,
        through: Message | None,
        limit: int,
        offset: int,
    ) -> Page[ListedMessage]:
        """The conversation's current branches (through `through` for its session)."""
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must not be negative (got {limit}, {offset})")
        values: dict[str, Any] = {
            "org_id": str(org_id),
            "conversation_id": str(conversation_id),
            "leaf_session": "" if through is None else str(through.chat_session_id),
            "limit": limit + 1,  # one past the page: whether more follow
            "offset": offset,
        }

        async def read(connection: Statements) -> list[dict[str, Any]]:
            leaf = None
            if through is not None:
                names = {"message_id": str(through.id), "org_id": values["org_id"]}
                leaf = await connection.fetch_val(q.NEWEST_LEAF, names)
            return await connection.fetch_all(q.LIST_BRANCH, {**values, "leaf": leaf})

        rows = await self._actor.call(read)
        items = tuple(
            ListedMessage(
                message=from_row(Message, row),
                sibling_count=int(row["sibling_count"]),
                sibling_index=int(row["sibling_index"]),
            )
            for row in rows[:limit]
        )
        return Page(items=items, limit=limit, offset=offset, has_more=len(rows) > limit)

    async def on_branch(self, org_id: UUID, leaf_id: UUID, message_id: UUID) -> bool:
        values = {"org_id": str(org_id), "leaf": str(leaf_id), "message_id": str(message_id)}
        found = await self._actor.call(_value(q.ON_BRANCH, values))
        return bool(found)

    async def newest_leaf(self, org_id: UUID, message_id: UUID) -> UUID | None:
        values = {"org_id": str(org_id), "message_id": str(message_id)}
        found = await self._actor.call(_value(q.NEWEST_LEAF, values))
        return None if found is None else UUID(found)

    async def session_messages(self, org_id: UUID, session_id: UUID) -> Sequence[Message]:
        """All of one session's messages, in the order they were added."""
        values = {"chat_session_id": str(session_id), "org_id": str(org_id)}
        return await self._all(Message, q.SESSION_MESSAGES, values)

    async def conversation_messages(self, org_id: UUID, conversation_id: UUID) -> Sequence[Message]:
        values = {"conversation_id": str(conversation_id), "org_id": str(org_id)}
        return await self._all(Message, q.CONVERSATION_MESSAGES, values)

    async def usage_by_model(
        self, org_id: UUID, *, start: datetime, end: datetime
    ) -> Sequence[ModelUsage]:
        values = {
            "org_id": str(org_id),
            "start": format_timestamp(start),
            "end": format_timestamp(end),
        }
        return await self._all(ModelUsage, q.USAGE_BY_MODEL, values)

    async def claim_key(
        self, scope: str, key: str, fingerprint: str, at: datetime
    ) -> IdempotentResult | None:
        names = {"scope": scope, "key": key}

        async def claim(connection: Statements) -> dict[str, Any] | None:
            # One work item, so no other request runs between the look and the claim.
            found = await connection.fetch_all(q.GET_KEY, names)
            if found:
                return found[0]
            values = {**names, "fingerprint": fingerprint, "at": format_timestamp(at)}
            await connection.execute(q.INSERT_KEY, values)
            return None

        row = await self._actor.call(claim)
        return None if row is None else from_row(IdempotentResult, row)

    async def finish_key(self, scope: str, key: str, status: int, body: str) -> None:
        values = {"scope": scope, "key": key, "status": status, "body": body}
        await self._actor.call(_execute((q.FINISH_KEY, values)))

    async def release_key(self, scope: str, key: str) -> None:
        await self._actor.call(_execute((q.RELEASE_KEY, {"scope": scope, "key": key})))

    async def forget_keys(self, *, before: datetime | None, unfinished: bool = False) -> None:
        statements = []
        if before is not None:
            statements.append((q.FORGET_OLD_KEYS, {"before": format_timestamp(before)}))
        if unfinished:
            statements.append((q.FORGET_UNFINISHED_KEYS, {}))
        await self._actor.call(_execute(*statements))

    async def add_org_model(self, model: StoredModel) -> None:
        await self._actor.call(_execute((q.INSERT_ORG_MODEL, to_row(model))))

    async def list_org_models(self) -> Sequence[StoredModel]:
        return await self._all(StoredModel, q.LIST_ORG_MODELS, {})

    async def delete_org_model(self, org_id: UUID, model_id: UUID) -> bool:
        values = {"id": str(model_id), "org_id": str(org_id)}

        async def delete(connection: Statements) -> bool:
            found = await connection.fetch_all(q.GET_ORG_MODEL, values)
            await connection.execute(q.DELETE_ORG_MODEL, values)
            return bool(found)

        deleted: bool = await self._actor.call(delete)
        return deleted

    async def recover_interrupted(self, at: datetime) -> int:
        """After a restart: mark in-progress replies INCOMPLETE and RESPONDING sessions ACTIVE.

        Returns how many replies were marked.
        """
        stamp = format_timestamp(at)

        async def recover(connection: Statements) -> int:
            # Counted first: the driver's rowcount is not portable. Same transaction, so exact.
            marked = await connection.fetch_val(q.COUNT_IN_PROGRESS)
            await connection.execute(q.MARK_INTERRUPTED, _interrupted_values(stamp))
            await connection.execute(q.RECOVER_SESSIONS, {"status": _RECOVERED_STATUS, "at": stamp})
            return int(marked)

        marked: int = await self._actor.call(recover)
        return marked

    async def search_conversations(
        self,
        org_id: UUID,
        query: SearchQuery,
        *,
        is_archived: bool | None,
        limit: int,
        offset: int,
    ) -> Page[SearchHit]:
        """Conversations matching `query`, best first: one statement (search_queries.py)."""
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must not be negative (got {limit}, {offset})")
        sql = search_queries.SEARCH[(self._dialect, is_archived is not None)]
        values: dict[str, Any] = {
            "org_id": str(org_id),
            "match": search_queries.match_text(self._dialect, query),
            "limit": limit + 1,  # one past the page: whether more follow
            "offset": offset,
            "matched_ids": MATCHED_IDS,
        }
        if is_archived is not None:
            values["is_archived"] = is_archived
        rows = await self._actor.call(_rows(sql, values))
        return search_queries.hits_from_rows(rows, limit, offset)

    # -- reading rows -------------------------------------------------------------------
    async def _one(self, cls: type[T], sql: str, values: dict[str, Any]) -> T | None:
        rows = await self._actor.call(_rows(sql, values))
        return from_row(cls, rows[0]) if rows else None

    async def _all(self, cls: type[T], sql: str, values: dict[str, Any]) -> list[T]:
        rows = await self._actor.call(_rows(sql, values))
        return [from_row(cls, row) for row in rows]

    async def _page(
        self, cls: type[T], sql: str, values: dict[str, Any], limit: int, offset: int
    ) -> Page[T]:
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must not be negative (got {limit}, {offset})")
        # One row past the page tells whether more follow, without counting them all.
        items = await self._all(cls, sql, {**values, "limit": limit + 1, "offset": offset})
        return Page(
            items=tuple(items[:limit]), limit=limit, offset=offset, has_more=len(items) > limit
        )


# -- work for the actor (runs on the asyncio side) -------------------------------------------
# A `seq` beyond every row's: a new message's history is read before it is added.
_AFTER_EVERY_ROW = 2**62


def _str(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _interrupted_values(at: str) -> dict[str, Any]:
    assert _INTERRUPTED.error is not None
    return {
        "status": _INTERRUPTED.status.value,
        "finish_reason": _INTERRUPTED.finish_reason,
        "error_code": _INTERRUPTED.error[0],
        "error_message": _INTERRUPTED.error[1],
        "at": at,
    }


def _versioned_session(session: ChatSession) -> Work:
    row = to_row(session)
    values = {
        key: row[key] for key in ("id", "org_id", "status", "head_id", "updated_at", "version")
    }

    async def work(connection: Statements) -> None:
        if await connection.fetch_val(q.UPDATE_SESSION, values) is None:
            names = {"id": values["id"], "org_id": values["org_id"]}
            found = await connection.fetch_val(q.SESSION_VERSION, names)
            raise StaleVersion(
                f"chat session {session.id} does not exist"
                if found is None
                else f"chat session {session.id} is at version {found}, not "
                f"{session.version - 1}: it was changed by another writer"
            )

    return work


def _reply_update(message: Message) -> Work:
    row = to_row(message)
    values = {key: row[key] for key in ("id", "org_id", *q.MESSAGE_UPDATE_COLUMNS)}

    async def work(connection: Statements) -> None:
        if await connection.fetch_val(q.UPDATE_MESSAGE, values) is None:
            names = {"id": values["id"], "org_id": values["org_id"]}
            status = await connection.fetch_val(q.MESSAGE_STATUS, names)
            raise StaleVersion(
                f"message {message.id} does not exist"
                if status is None
                else f"message {message.id} is {status}, not in progress"
            )

    return work


def _together(*works: Work) -> Work:
    async def work(connection: Statements) -> None:
        for each in works:
            await each(connection)

    return work


def _touch(conversation_id: UUID, at: datetime) -> tuple[str, dict[str, Any]]:
    return q.TOUCH_CONVERSATION, {"id": str(conversation_id), "at": format_timestamp(at)}


def _execute(*statements: tuple[str, dict[str, Any]]) -> Work:
    async def work(connection: Statements) -> None:
        for sql, values in statements:
            await connection.execute(sql, values)

    return work


def _value(sql: str, values: dict[str, Any]) -> Work:
    async def work(connection: Statements) -> Any:
        return await connection.fetch_val(sql, values)

    return work


def _rows(sql: str, values: dict[str, Any]) -> Work:
    async def work(connection: Statements) -> list[dict[str, Any]]:
        return await connection.fetch_all(sql, values)

    return work
