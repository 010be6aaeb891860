"""What only a database server brings: it can refuse us, go away and come back, or stop
answering. The store fails requests with StorageUnavailable meanwhile, never for long, and
works again once the server is back, without being reopened."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio_asyncio

from conversation_service.adapters.sql import SqlStore, dialects, open_sql_store, opening
from conversation_service.adapters.sql.schema import CURRENT_VERSION
from conversation_service.adapters.sql.statements import Statements
from conversation_service.ports.storage import StorageUnavailable
from tests.adapters.sql_databases import query
from tests.postgres_server import PostgresServer, running_server

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server of this module's own, which its tests stop and start."""
    with running_server() as server:
        yield server


@pytest.fixture
def own_url(own_server: PostgresServer) -> Iterator[str]:
    if own_server.process is None:  # a test stopped it and failed before starting it again
        own_server.start()
    url = own_server.create_database()
    yield url
    own_server.drop_database(url)


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[SqlStore]:
    async with trio_asyncio.open_loop(), open_sql_store(url) as store:
        yield store


async def run_sql(store: SqlStore, sql: str) -> Any:
    """Run one statement through the store's actor, as the store's own work items do."""

    async def work(statements: Statements) -> Any:
        return await statements.fetch_val(sql)

    return await store._actor.call(work)


async def test_requests_fail_while_the_server_is_down_and_work_once_it_is_back(
    own_server: PostgresServer, own_url: str, values: Any
) -> None:
    org = values.org()
    async with opened(own_url) as store:
        await store.add_org(org)

        await trio.to_thread.run_sync(own_server.stop)
        with trio.fail_after(30):
            for _ in range(3):  # each request tries to reconnect, and fails on its own
                with pytest.raises(StorageUnavailable, match="could not reconnect"):
                    await store.get_org(org.id)
            with pytest.raises(StorageUnavailable):
                await store.add_conversation(values.conversation(org))

        await trio.to_thread.run_sync(own_server.start)
        with trio.fail_after(30):
            assert await store.get_org(org.id) == org
            conversation = values.conversation(org)
            await store.add_conversation(conversation)
            assert await store.get_conversation(org.id, conversation.id) == conversation


async def test_a_connection_lost_mid_request_fails_that_request_and_the_next_reconnects(
    own_server: PostgresServer, own_url: str, values: Any
) -> None:
    org = values.org()
    failed: list[BaseException] = []

    async def sleep_on_the_server(store: SqlStore) -> None:
        try:
            await run_sql(store, "SELECT pg_sleep(60)")
        except StorageUnavailable as e:
            failed.append(e)

    async with opened(own_url) as store:
        await store.add_org(org)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sleep_on_the_server, store)
                # The server's own view says when the statement runs: nothing to wait on.
                while not _sleeping_backends(own_url):  # noqa: ASYNC110
                    await trio.sleep(0.05)
                query(
                    own_url,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'conversation-service'",
                )
            assert await store.get_org(org.id) == org

    [error] = failed
    assert "lost the connection to the database" in str(error)


def _sleeping_backends(url: str) -> list[tuple[Any, ...]]:
    return query(
        url,
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'conversation-service' "
        "AND query LIKE 'SELECT pg_sleep%' AND state = 'active'",
    )


async def test_a_server_that_stops_answering_fails_requests_without_holding_them(
    own_server: PostgresServer,
    own_url: str,
    values: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Something takes the server's port and never answers: reconnecting gives up after its
    # deadline (shortened here), and the requests waiting meanwhile fail with it.
    monkeypatch.setattr(opening, "RECONNECT_DEADLINE", 0.5)
    org = values.org()
    outcomes: list[BaseException | None] = []

    async def get_org(store: SqlStore) -> None:
        try:
            await store.get_org(org.id)
        except StorageUnavailable as e:
            outcomes.append(e)
        else:
            outcomes.append(None)

    async with opened(own_url) as store:
        await store.add_org(org)
        await trio.to_thread.run_sync(own_server.stop)
        with trio.socket.socket() as silent:
            silent.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
            await silent.bind(("127.0.0.1", own_server.port))
            silent.listen()
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    for _ in range(5):
                        nursery.start_soon(get_org, store)
        assert len(outcomes) == 5
        assert all(isinstance(outcome, StorageUnavailable) for outcome in outcomes), outcomes
        assert "did not answer in time" in str(outcomes[0])

        await trio.to_thread.run_sync(own_server.start)
        with trio.fail_after(30):
            assert await store.get_org(org.id) == org


async def test_a_statement_that_gets_no_answer_fails_and_the_connection_is_replaced(
    postgres_url: str, values: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialects, "STATEMENT_TIMEOUT", 0.5)
    org = values.org()
    async with opened(postgres_url) as store:
        await store.add_org(org)
        with trio.fail_after(30):
            with pytest.raises(StorageUnavailable, match="lost the connection"):
                await run_sql(store, "SELECT pg_sleep(10)")
            assert await store.get_org(org.id) == org


async def test_stores_opened_at_once_on_a_new_database_migrate_it_once(postgres_url: str) -> None:
    counts: list[int] = []

    async def open_and_count() -> None:
        async with opened(postgres_url) as store:
            counts.append(await store.count_orgs())

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(open_and_count)

    assert counts == [0, 0, 0]
    versions = query(postgres_url, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, CURRENT_VERSION + 1)]


@pytest.mark.parametrize("scheme", ["postgres", "postgresql+asyncpg"])
async def test_every_postgresql_url_form_opens(postgres_url: str, scheme: str, values: Any) -> None:
    url = postgres_url.replace("postgresql://", f"{scheme}://", 1)
    async with opened(url) as store:
        await store.add_org(values.org())
        assert await store.count_orgs() == 1


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        (lambda pg, url: url.replace(f":{pg.password}@", ":wrong@"), "InvalidPassword"),
        (lambda pg, url: url.rsplit("/", 1)[0] + "/no_such_database", "InvalidCatalogName"),
        (lambda pg, url: url.replace(f":{pg.port}/", f":{_closed_port()}/"), "ConnectionRefused"),
    ],
    ids=["wrong password", "no such database", "nothing listening"],
)
async def test_a_server_that_refuses_us_gives_storage_unavailable(
    postgres: PostgresServer, postgres_url: str, change: Any, cause: str
) -> None:
    url = change(postgres, postgres_url)
    async with trio_asyncio.open_loop():
        with trio.fail_after(30), pytest.raises(StorageUnavailable) as refused:
            async with open_sql_store(url):
                pass  # pragma: no cover
    assert "could not open the database" in str(refused.value)
    assert cause in type(refused.value.__cause__).__name__


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # free again once closed: nothing listens there
