"""Running the store's SQL on the driver connection behind `databases`.

`databases` compiles every query through SQLAlchemy on every call, which cost more than the
queries themselves (a third of the storage path in a profile). The store's SQL is plain text
with `:name` parameters that need no compiling: sqlite3 takes them as they are. `databases`
still opens, configures and closes the connection and runs the migrations and transactions;
the work items run their statements through `Statements`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any, Protocol

import aiosqlite


class Statements(Protocol):
    """The statements a work item runs, inside the transaction the storage actor opened."""

    async def execute(self, sql: str, values: Mapping[str, Any] | None = None) -> None: ...

    async def fetch_all(
        self, sql: str, values: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...

    async def fetch_val(self, sql: str, values: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
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
