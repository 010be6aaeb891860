"""The branches migration on a database a version-4 service wrote: each message follows the
one added before it in its session, each session's head is its last message, and nothing a
client sees of it changes (every session was one path)."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest
import trio_asyncio

from conversation_service.adapters.sql import open_sql_store, schema
from conversation_service.adapters.sql import queries as q
from conversation_service.domain.model import MessageStatus
from conversation_service.domain.session_machine import SessionInput
from tests.adapters.sql_databases import index_names, query, query_plan

T = "2026-11-26T06:02:59.{:06d}Z"


def _insert(url: str, table: str, row: dict[str, Any]) -> None:
    names = ", ".join(row)
    query(url, f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in row)})", row)


async def test_a_version_4_database_gets_its_branches_from_its_message_order(
    sql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as older:
        older.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
        older.setattr(schema, "CURRENT_VERSION", 4)
        async with trio_asyncio.open_loop(), open_sql_store(sql_url):
            pass
    org, conversation = str(uuid4()), str(uuid4())
    sessions = [str(uuid4()) for _ in range(3)]  # the last one has no messages
    _insert(sql_url, "orgs", {"id": org, "name": "old", "created_at": T.format(0)})
    _insert(sql_url, "conversations", {
        "id": conversation, "org_id": org, "title": "old", "is_archived": False,
        "created_at": T.format(0), "updated_at": T.format(0),
    })  # fmt: skip
    for n, session in enumerate(sessions):
        _insert(sql_url, "chat_sessions", {
            "id": session, "org_id": org, "conversation_id": conversation,
            "model_id": str(uuid4()), "status": "active", "created_at": T.format(n),
            "updated_at": T.format(n), "context": "session", "version": 3,
        })  # fmt: skip
    # The two sessions' turns, interleaved as a conversation on two models writes them.
    order = [
        (0, "user", "one"), (1, "user", "un"), (0, "assistant", "re: one"),
        (1, "assistant", "re: un"), (0, "user", "two"), (0, "assistant", "re: two"),
    ]  # fmt: skip
    ids = []
    for n, (which, role, content) in enumerate(order):
        ids.append(str(uuid4()))
        _insert(sql_url, "messages", {
            "id": ids[-1], "org_id": org, "conversation_id": conversation,
            "chat_session_id": sessions[which], "role": role, "content": content,
            "status": "completed", "created_at": T.format(10 + n), "updated_at": T.format(10 + n),
        })  # fmt: skip

    org_id, conversation_id = UUID(org), UUID(conversation)
    async with trio_asyncio.open_loop(), open_sql_store(sql_url) as store:
        messages = (await store.list_messages(org_id, conversation_id, limit=10, offset=0)).items
        parents = [None if m.parent_id is None else str(m.parent_id) for m in messages]
        assert [str(m.id) for m in messages] == ids
        assert parents == [None, None, ids[0], ids[1], ids[2], ids[4]]
        found = await store.list_sessions(org_id, conversation_id)
        heads = [None if s.head_id is None else str(s.head_id) for s in found]
        assert heads == [ids[5], ids[3], None]
        branch = await store.list_branch(org_id, conversation_id, through=None, limit=10, offset=0)
        assert [m.message for m in branch.items] == list(messages)  # as it was listed
        assert {(m.sibling_count, m.sibling_index) for m in branch.items} == {(1, 1)}
        session = found[0]
        assert session.version == 3  # the migration is no transition
        assert await store.newest_leaf(org_id, messages[0].id) == session.head_id
        # The next turn is shown the whole session, as before.
        user = attrs.evolve(messages[4], id=uuid4(), content="three", parent_id=session.head_id)
        reply = attrs.evolve(messages[5], id=uuid4(), content="", parent_id=user.id,
                             status=MessageStatus.IN_PROGRESS)  # fmt: skip
        responding = session.apply(SessionInput.SEND, session.updated_at).at_head(reply.id)
        shown = await store.begin_reply(user, reply, responding, history_limit=100)
        assert [m.content for m in shown.messages] == ["one", "re: one", "two", "re: two"]
    assert "messages_by_parent" in index_names(sql_url)
    versions = query(sql_url, "SELECT MAX(version) FROM schema_version")
    # Migrated to the last version (5, the branches, and those after it).
    assert versions == [(schema.CURRENT_VERSION,)] and schema.CURRENT_VERSION >= 5


_WALK = {
    "org_id": "o", "conversation_id": "c", "leaf_session": "s", "leaf": "l", "start": "x",
    "message_id": "m", "before": 5, "limit": 10, "offset": 0,
}  # fmt: skip


@pytest.mark.parametrize(
    "name", ["SESSION_HISTORY", "CONVERSATION_HISTORY", "ON_BRANCH", "NEWEST_LEAF", "LIST_BRANCH"]
)
async def test_the_branch_walks_go_by_index_never_through_every_message(
    sql_url: str, name: str
) -> None:
    async with trio_asyncio.open_loop(), open_sql_store(sql_url):
        pass
    sql = getattr(q, name)
    plan, _ = query_plan(sql_url, sql, {k: v for k, v in _WALK.items() if f":{k}" in sql})
    assert "Seq Scan on messages" not in plan, plan
    assert not re.search(r"SCAN (messages|m|s|c)\b", plan), plan
    assert "INDEX" in plan.upper(), plan
