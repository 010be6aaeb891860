"""Looking into a store's database from a test, a SQLite file or a PostgreSQL database alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conversation_service.adapters.sql import queries as q
from conversation_service.adapters.sql import schema as sql_schema
from conversation_service.adapters.sql.statements import positional
from tests import postgres_server

# The columns each migration added to a table the store writes, by the version that added them.
_ADDED_COLUMNS: dict[int, dict[str, tuple[str, ...]]] = {
    5: {"messages": ("parent_id",), "chat_sessions": ("head_id",)},
}


@contextmanager
def written_by_version(version: int) -> Iterator[None]:
    """The store as the service of schema `version` was: it migrates no further, and adds and
    reads conversations, sessions and messages without the columns later migrations added."""
    later = {
        (table, column)
        for added, tables in _ADDED_COLUMNS.items()
        if added > version
        for table, columns in tables.items()
        for column in columns
    }

    def kept(table: str, columns: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c for c in columns if (table, c) not in later)

    sessions = kept("chat_sessions", q.SESSION_COLUMNS)
    older = {
        "INSERT_MESSAGE": q._insert("messages", kept("messages", q.MESSAGE_COLUMNS)),
        "INSERT_SESSION": q._insert("chat_sessions", sessions),
        "GET_SESSION": q.GET_SESSION.replace(", ".join(q.SESSION_COLUMNS), ", ".join(sessions)),
        "LIST_SESSIONS": q.LIST_SESSIONS.replace(", ".join(q.SESSION_COLUMNS), ", ".join(sessions)),
    }
    saved = {name: getattr(q, name) for name in older}, sql_schema.CURRENT_VERSION
    for name, sql in older.items():
        setattr(q, name, sql)
    sql_schema.CURRENT_VERSION = version
    try:
        yield
    finally:
        for name, sql in saved[0].items():
            setattr(q, name, sql)
        sql_schema.CURRENT_VERSION = saved[1]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


def file_of(url: str) -> Path:
    """The file of a SQLite URL."""
    return Path(url.removeprefix("sqlite+aiosqlite://").removeprefix("sqlite://"))


def query(
    url: str, sql: str, params: dict[str, Any] | None = None, *, settings: tuple[str, ...] = ()
) -> list[tuple[Any, ...]]:
    """The rows of `sql` (with `:name` parameters, as the store writes its SQL)."""
    if is_postgres(url):
        text, names = positional(sql)
        args = [(params or {})[name] for name in names]
        return postgres_server.query(url, text, *args, settings=settings)
    with sqlite3.connect(file_of(url)) as db:
        return db.execute(sql, params or {}).fetchall()


def schema(url: str) -> list[tuple[Any, ...]]:
    """Every table, column and index the database has, with its definition."""
    if not is_postgres(url):
        return query(url, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    return query(
        url,
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public' "
        "ORDER BY table_name, ordinal_position",
    ) + query(
        url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
    )


def table_names(url: str) -> set[str]:
    """Every table the database has (on SQLite, a virtual table's own tables too)."""
    if is_postgres(url):
        rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    else:
        rows = query(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows}


def rows_naming(
    url: str, names: Sequence[str], *, unread: Collection[str] = ()
) -> list[tuple[str, tuple[Any, ...]]]:
    """(table, row) of every row of every table but the `unread` ones in which any of
    `names` appears, in any column (as text: a blob is searched as the bytes it holds)."""
    found = []
    for table in sorted(table_names(url) - set(unread)):
        for row in query(url, f'SELECT * FROM "{table}"'):
            text = " ".join(
                value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                for value in row
            )
            if any(name in text for name in names):
                found.append((table, row))
    return found


def index_names(url: str) -> set[str]:
    if is_postgres(url):
        rows = query(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    else:
        rows = query(url, "SELECT name FROM sqlite_master WHERE type = 'index'")
    return {row[0] for row in rows}


def query_plan(url: str, sql: str, params: dict[str, Any]) -> tuple[str, bool]:
    """How the database would run `sql`: the plan as text, and whether it sorts rows itself
    (rather than reading them in an index's order)."""
    if not is_postgres(url):
        plan = " | ".join(row[-1] for row in query(url, f"EXPLAIN QUERY PLAN {sql}", params))
        return plan, "TEMP B-TREE" in plan
    # The tables are empty, so PostgreSQL would rather read them whole and sort: with both
    # made as dear as it allows, the plan shows whether an index can give filter and order.
    rows = query(
        url,
        f"EXPLAIN {sql}",
        params,
        settings=("SET enable_seqscan = off", "SET enable_sort = off"),
    )
    plan = " | ".join(row[0] for row in rows)
    return plan, "Sort" in plan
