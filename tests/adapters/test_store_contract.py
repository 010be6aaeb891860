"""The project's stores run the kit's store contract, the whole of it: in memory, on a SQLite
file and on a PostgreSQL database (a new one for each test and each Hypothesis example)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conversation_service.testing.store_contract import (
    StoreContract,
    StoreFactory,
    memory_store_factory,
    sql_store_factory,
    sqlite_files,
)
from tests.postgres_server import PostgresServer


class TestInMemoryStore(StoreContract):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return memory_store_factory()


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path_factory: pytest.TempPathFactory) -> StoreFactory:
        return sql_store_factory(sqlite_files(lambda: tmp_path_factory.mktemp("store")))


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store_factory(self, postgres: PostgresServer) -> StoreFactory:
        @contextmanager
        def new_database() -> Iterator[str]:
            url = postgres.create_database()
            try:
                yield url
            finally:
                postgres.drop_database(url)

        return sql_store_factory(new_database)
