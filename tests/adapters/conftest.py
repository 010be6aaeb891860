"""Stores to test, and the kit's builder of domain values with a controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio_asyncio

from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.adapters.sql import SqlStore, open_sql_store
from conversation_service.testing.values import T0, Values, at, org_with_session

__all__ = ["T0", "Values", "at", "org_with_session"]  # the kit's, under their old home


@pytest.fixture
def values() -> Values:
    return Values()


@pytest.fixture
def sqlite_db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/conversations.db"


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request: pytest.FixtureRequest) -> str:
    """A new database of each SQL dialect in turn: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_db_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[InMemoryStore | SqlStore]:
    """Each store implementation in turn, so one set of tests holds all to the contract."""
    if request.param == "memory":
        yield InMemoryStore()
        return
    url = request.getfixturevalue("sqlite_db_url" if request.param == "sqlite" else "postgres_url")
    async with trio_asyncio.open_loop(), open_sql_store(url) as sql_store:
        yield sql_store
