"""Stores to test, and the kit's builder of domain values with a controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import nullcontext
from pathlib import Path

import pytest

from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.adapters.sql import SqlStore
from conversation_service.testing.store_contract import memory_store_factory, sql_store_factory
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
    """Each store implementation in turn, so one set of tests holds all to the contract.
    (The contract itself is the kit's StoreContract, run in test_store_contract.py.)"""
    opened = memory_store_factory()
    if request.param != "memory":
        url = request.getfixturevalue(
            "sqlite_db_url" if request.param == "sqlite" else "postgres_url"
        )
        opened = sql_store_factory(lambda: nullcontext(url))
    async with opened() as chosen:
        yield chosen
