"""Where SQLite and PostgreSQL differ, and nothing else.

The store's SQL (queries.py) and its migrations (schema.py) are one text for both: ids and
timestamps are TEXT in one fixed format (rows.py), booleans are BOOLEAN, and every query is
written in the SQL both speak. What differs, and why:

- Drivers and URLs: SQLite through aiosqlite (`sqlite:///path`, `sqlite+aiosqlite:///path`),
  PostgreSQL through asyncpg (`postgresql://`, `postgres://`, `postgresql+asyncpg://`).
- Opening: a SQLite file is probed with sqlite3 first (see opening.py); a PostgreSQL server is
  reached over a pool of one connection (the storage actor's only one), with a connect
  timeout and a statement timeout, so that a server that stops answering fails requests
  instead of holding them.
- Schema words: an ever-growing row key is `INTEGER PRIMARY KEY AUTOINCREMENT` in SQLite and
  a `BIGINT GENERATED ALWAYS AS IDENTITY` column in PostgreSQL; a float is SQLite's REAL (8
  bytes) and PostgreSQL's DOUBLE PRECISION (its REAL has 4 bytes: 0.2 would read back as
  0.200000003). INTEGER is 64-bit in SQLite and 32-bit in PostgreSQL; no stored count, token
  total, latency or version comes near 2^31.
- Connection settings: SQLite's PRAGMAs (WAL, synchronous, busy timeout, foreign keys, which
  PostgreSQL always enforces). Migrations on PostgreSQL hold an advisory lock, so that
  instances starting together migrate one after the other.
- Parameters: sqlite3 takes the `:name` parameters as they are; asyncpg takes `$1..$n`
  (statements.py renames them once per SQL text).
- Rows: SQLite hands booleans back as 0 and 1 (rows.py reads both).
- Errors: an integrity error is `sqlite3.IntegrityError` or asyncpg's
  `IntegrityConstraintViolationError`; both become StorageUnavailable. Only a server can go
  away: a lost PostgreSQL connection is detected and reopened on the next request.
- Transactions: SQLite can stay inside a transaction whose COMMIT failed, and PostgreSQL
  refuses every statement of a transaction after one failed; either way the storage actor
  rolls back and retries the batch's requests one by one.
- Text order: PostgreSQL compares TEXT by the database's collation, SQLite byte by byte. Ids
  and timestamps are fixed-width ASCII with their separators at fixed places, so both order
  them alike (digits before letters, each in its usual order) under any usual collation.
- Branches (queries.py): one text for both. The walks up and down a session's tree are
  recursive CTEs (WITH RECURSIVE, several starting SELECTs before the recursive one:
  SQLite 3.34, any PostgreSQL), a page is computed once before its sibling counts
  (AS MATERIALIZED: SQLite 3.35, PostgreSQL 12), and a reply's history is counted by a
  window (COUNT(*) OVER ()). Each starting point is a SELECT of its own: one condition that
  named several made SQLite read every message of the organisation. Both compare a parent
  with `=` and `IS NULL` apart (a first message has none), never `IS NOT DISTINCT FROM`
  (SQLite 3.39).
- Search (search_schema.py, search_queries.py): the one part whose SQL differs.
  - The index: SQLite's FTS5 (two contentless tables, kept by triggers) and PostgreSQL's
    tsvector columns (generated, GIN-indexed); the schema step is each dialect's own.
  - Words: FTS5's `unicode61 remove_diacritics 2` tokenizer; PostgreSQL's parser, fed by
    search_words() (accents of Latin letters off, lower case by a fixed table, punctuation,
    symbols and emoji as spaces) so that it splits and folds as FTS5 does whatever its
    locale. What still differs: words of scripts that write vowels as combining marks
    (Devanagari, Thai) are cut at those marks by FTS5, kept whole by PostgreSQL; symbols
    outside search_words()'s ranges are letters to PostgreSQL; a database whose locale is
    C folds the case of ASCII, Latin, Greek and Cyrillic letters only. PostgreSQL needs a
    UTF8 database and version 13 (normalize()).
  - The query: an FTS5 string of quoted words, or a tsquery of quoted lexemes (folded as
    search_words() folds), never the user's text as syntax.
  - Relevance: FTS5's bm25 (a term's rarity and a message's length against the average,
    over the whole table: every organisation's messages) against ts_rank with
    normalisation 16 (the message alone). Same ranking shape (title matches, relevance,
    newest activity); equally good results may come in another order.
  - Reach: FTS5 rowids put each organisation's rows in one range, read alone; PostgreSQL's
    GIN index returns every organisation's matches, the others' dropped by the org filter.
  - Cost: FTS5 flushes its pending words at every statement savepoint, which a trigger
    opens, so each indexed message is written as a small segment of its own (search
    writes cost more on SQLite); PostgreSQL computes a vector per row written.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import sqlalchemy.exc

from conversation_service.adapters.sql.statements import (
    DriverConnection,
    PostgresStatements,
    SqliteStatements,
)

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# scheme -> (the scheme `databases` is given, the dialect)
_SCHEMES = {
    "sqlite": ("sqlite+aiosqlite", SQLITE),
    "sqlite+aiosqlite": ("sqlite+aiosqlite", SQLITE),
    "postgresql": ("postgresql", POSTGRESQL),
    "postgres": ("postgresql", POSTGRESQL),
    "postgresql+asyncpg": ("postgresql", POSTGRESQL),
}

# A connection attempt gives up after this (asyncpg's default is a minute), and reopening a
# lost connection, the migrations' check included, after RECONNECT_DEADLINE: requests wait no
# longer for a server that is not there.
CONNECT_TIMEOUT = 5.0
RECONNECT_DEADLINE = 10.0
# One statement that gets no answer for this long fails, and the connection is replaced.
# The store's statements take milliseconds; this only catches a server that stopped answering.
# (A migration statement is held to it too: one that needs longer must say so.)
STATEMENT_TIMEOUT = 30.0

# Words the migrations leave to each dialect: `{serial_key}`, `{double}`.
SCHEMA_WORDS: dict[str, dict[str, str]] = {
    SQLITE: {"serial_key": "INTEGER PRIMARY KEY AUTOINCREMENT", "double": "REAL"},
    POSTGRESQL: {
        "serial_key": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "double": "DOUBLE PRECISION",
    },
}

INTEGRITY_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.IntegrityError,
    sqlalchemy.exc.IntegrityError,
    asyncpg.IntegrityConstraintViolationError,
)

# What says the connection itself failed (not one statement): the socket, the server going
# away (shut down, crashed, still starting), a statement timing out (TimeoutError).
_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


# What `databases` reads from a PostgreSQL URL's query: TLS, and a Unix socket's directory.
# It would ignore any other option silently (`sslmode=require` would connect without TLS).
_POSTGRESQL_OPTIONS = {"ssl", "host"}


def normalise_url(url: str) -> str:
    """`url` with the driver the store uses; ValueError for a database it does not support."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _SCHEMES:
        named = f"scheme {scheme!r}" if sep else "no scheme"  # not the rest: it holds passwords
        raise ValueError(
            f"unsupported database URL ({named}): expected sqlite:///path or "
            "postgresql://user:password@host[:port]/database"
        )
    driver, dialect = _SCHEMES[scheme]
    if dialect == POSTGRESQL:
        unread = {name for name, _ in parse_qsl(urlsplit(url).query)} - _POSTGRESQL_OPTIONS
        if unread:
            raise ValueError(
                f"unsupported option(s) {sorted(unread)} in the database URL: a PostgreSQL URL "
                "takes ssl=disable|prefer|require|verify-ca|verify-full and host=<socket dir>"
            )
    return f"{driver}://{rest}"


def dialect_of(url: str) -> str:
    """`sqlite` or `postgresql`, for a URL normalise_url() accepts."""
    return _SCHEMES[normalise_url(url).partition("://")[0]][1]


def database_options(dialect: str) -> dict[str, Any]:
    """Options for `databases.Database` (its backend passes them to the driver)."""
    if dialect != POSTGRESQL:
        return {}
    return {
        # The storage actor holds the pool's only connection. No floor (asyncpg >= 0.32 would
        # reconnect a lost one in the background): the actor reopens it when it needs it.
        "min_size": 0,
        "max_size": 1,
        "timeout": CONNECT_TIMEOUT,
        "command_timeout": STATEMENT_TIMEOUT,
        "server_settings": {"application_name": "conversation-service"},
    }


def driver_connection(dialect: str, raw: Any) -> DriverConnection:
    """The statements runner over the driver's own connection under `databases`."""
    if dialect == POSTGRESQL:
        return PostgresStatements(raw)
    return SqliteStatements(raw)


def connection_lost(error: BaseException, connection: DriverConnection | None) -> bool:
    """Whether `error` (or the state it left) means the connection must be opened again."""
    if connection is not None and connection.is_closed():
        return True
    return isinstance(error, _CONNECTION_ERRORS)
