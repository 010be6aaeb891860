"""Running the store's SQL on the driver connection behind `databases`.

`databases` compiles every query through SQLAlchemy on every call, which cost more than the
queries themselves (a third of the storage path in a profile). The store's SQL is plain text
with `:name` parameters that need no compiling: sqlite3 takes them as they are, and asyncpg
takes them once renamed `$1..$n` (done once per SQL text, then cached). `databases` still
opens, configures and closes the connection and runs the migrations and transactions; the
work items run their statements through `Statements`.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol, cast

import aiosqlite
import asyncpg


class Statements(Protocol):
    """The statements a work item runs, inside the transaction the storage actor opened."""

    async def execute(self, sql: str, values: Mapping[str, Any] | None = None) -> None: ...

    async def fetch_all(
        self, sql: str, values: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...

    async def fetch_val(self, sql: str, values: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        ...

    async def execute_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """`sql` once for each of `rows` (an import's batch of inserts)."""
        ...


Work = Callable[[Statements], Awaitable[Any]]
"""A unit of database work: statements run in order, inside a transaction."""


class DriverConnection(Statements, Protocol):
    """What the storage actor also asks of the connection it runs the work items on."""

    async def run_transaction(self, works: Sequence[Work]) -> list[Any]:
        """Run `works` in one transaction and commit; their results, in order. On an error
        the transaction is rolled back and the error raised."""
        ...

    def is_closed(self) -> bool:
        """Whether the connection is gone (a server that went away): none of it can run."""
        ...

    async def leave_failed_transaction(self) -> None:
        """Roll back what a failed transaction left open, so the next one can begin."""
        ...


class SqliteStatements:
    """Statements on aiosqlite's connection: one trip to its thread each, nothing compiled."""

    def __init__(self, raw: aiosqlite.Connection) -> None:
        raw.row_factory = sqlite3.Row  # rows come back with their column names
        self._raw = raw

    async def execute(self, sql: str, values: Mapping[str, Any] | None = None) -> None:
        await self._raw.execute_fetchall(sql, values or {})

    async def fetch_all(
        self, sql: str, values: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        rows = await self._raw.execute_fetchall(sql, values or {})
        return [dict(row) for row in rows]

    async def fetch_val(self, sql: str, values: Mapping[str, Any] | None = None) -> Any:
        rows = list(await self._raw.execute_fetchall(sql, values or {}))
        return rows[0][0] if rows else None

    async def execute_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._raw.executemany(sql, rows)

    async def run_transaction(self, works: Sequence[Work]) -> list[Any]:
        # One trip to aiosqlite's thread for the whole transaction, however many statements
        # it holds: each trip costs far more than an SQLite statement does. `_execute` is
        # the primitive every aiosqlite call goes through (aiosqlite is pinned for it).
        return cast(
            list[Any], await self._raw._execute(_transaction_in_thread, self._raw._conn, works)
        )

    def hand_off(self, works: Sequence[Work], outcome: ThreadOutcome) -> None:
        """Queue the transaction of `works` on aiosqlite's thread with no event loop between:
        the thread reports its results (or error) to `outcome`, as it would to the asyncio
        future `_execute` makes. It runs after whatever the thread has queued before it."""
        raw = self._raw
        if not raw._running or raw._connection is None:
            raise ValueError("Connection closed")  # what `_execute` raises
        raw._tx.put_nowait((outcome, functools.partial(_transaction_in_thread, raw._conn, works)))  # type: ignore[arg-type]

    def is_closed(self) -> bool:
        return False  # a file: nothing that can go away under an open connection

    async def leave_failed_transaction(self) -> None:
        # A failed COMMIT (SQLITE_BUSY, a full disk) leaves SQLite inside the transaction,
        # and every later BEGIN on this one connection would then fail too.
        if self._raw.in_transaction:
            await self._raw.rollback()


class _InThread:
    """Statements run on the sqlite3 connection itself, in aiosqlite's thread. The methods
    are coroutines only so that the same work items run here and on asyncpg: they never
    suspend, so `_run_now` drives one to its end in a single step."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, values: Mapping[str, Any] | None = None) -> None:
        self._connection.execute(sql, values or {}).fetchall()

    async def fetch_all(
        self, sql: str, values: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return [dict(row) for row in self._connection.execute(sql, values or {}).fetchall()]

    async def fetch_val(self, sql: str, values: Mapping[str, Any] | None = None) -> Any:
        rows = self._connection.execute(sql, values or {}).fetchall()  # steps it to its end
        return rows[0][0] if rows else None

    async def execute_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._connection.executemany(sql, rows)


def _run_now(work: Awaitable[Any]) -> Any:
    coroutine = cast(Coroutine[Any, Any, Any], work)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a work item awaited something other than its statements")


class ThreadOutcome(Protocol):
    """What aiosqlite's thread reports a call's outcome to: an asyncio future, or a stand-in
    with the methods its worker calls (`get_loop().call_soon_threadsafe(set_result, ...)`)."""

    def get_loop(self) -> Any: ...

    def done(self) -> bool: ...

    def set_result(self, result: Any) -> None: ...

    def set_exception(self, error: BaseException) -> None: ...


def _transaction_in_thread(connection: sqlite3.Connection, works: Sequence[Work]) -> list[Any]:
    statements = _InThread(connection)
    if connection.in_transaction:  # a failed ROLLBACK left the last one open
        connection.rollback()
    connection.execute("BEGIN")
    try:
        results = [_run_now(work(statements)) for work in works]
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise
    return results


class PostgresStatements:
    """Statements on asyncpg's connection, `:name` parameters passed as `$1..$n`.

    asyncpg prepares each statement text once per connection and keeps it (its statement
    cache), so the store's fixed texts are parsed and planned by the server once.
    """

    def __init__(self, raw: asyncpg.Connection) -> None:
        self._raw = raw

    async def execute(self, sql: str, values: Mapping[str, Any] | None = None) -> None:
        text, names = positional(sql)
        await self._raw.execute(text, *_values(sql, names, values))

    async def fetch_all(
        self, sql: str, values: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        text, names = positional(sql)
        rows = await self._raw.fetch(text, *_values(sql, names, values))
        return [dict(row.items()) for row in rows]

    async def fetch_val(self, sql: str, values: Mapping[str, Any] | None = None) -> Any:
        text, names = positional(sql)
        return await self._raw.fetchval(text, *_values(sql, names, values))

    async def execute_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        text, names = positional(sql)
        await self._raw.executemany(text, [_values(sql, names, row) for row in rows])

    async def run_transaction(self, works: Sequence[Work]) -> list[Any]:
        async with self._raw.transaction():
            return [await work(self) for work in works]

    def is_closed(self) -> bool:
        try:
            return bool(self._raw.is_closed())
        except asyncpg.InterfaceError:  # the pool took back the connection it saw close
            return True

    async def leave_failed_transaction(self) -> None:
        # `databases` rolls back a transaction whose body failed; a failed COMMIT ends the
        # transaction on the server. This only clears what a lost ROLLBACK left behind.
        if not self.is_closed() and self._raw.is_in_transaction():
            await self._raw.execute("ROLLBACK")


# A quoted literal or identifier (left as it is), a `::` cast (too), or a `:name` parameter.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|:([A-Za-z_][A-Za-z0-9_]*)")


@functools.lru_cache(maxsize=512)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with its `:name` parameters as `$1..$n`, and the names in that order.

    A name used twice gets the same number. Quoted text and `::` casts are left alone.
    """
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _TOKEN.sub(number, sql), tuple(names)


def _values(sql: str, names: tuple[str, ...], values: Mapping[str, Any] | None) -> list[Any]:
    given = values or {}
    missing = [name for name in names if name not in given]
    if missing:  # as sqlite3 refuses it, rather than a KeyError from deep inside
        raise ValueError(f"no value for the parameters {missing} of {sql!r}")
    return [given[name] for name in names]
