"""What only the SQL store has to show, on a SQLite file and on a PostgreSQL database alike:
durability, schema, indexes, batching, concurrency, closing, and clean errors. The tests
named for SQLite see what only its file has (WAL, the file's own checks); PostgreSQL's own
(a server going away and coming back) are in test_postgres_store.py."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import attrs
import pytest
import trio
import trio.testing
import trio_asyncio

from conversation_service.adapters.sql import (
    SchemaTooNew,
    SqlStore,
    normalise_url,
    open_sql_store,
    sqlite_url_for_dir,
)
from conversation_service.adapters.sql import queries as q
from conversation_service.adapters.sql.schema import CURRENT_VERSION
from conversation_service.ports.storage import StorageUnavailable
from conversation_service.ports.telemetry import NoTelemetry
from tests.adapters.sql_databases import file_of, index_names, query, query_plan, schema

pytestmark = pytest.mark.filterwarnings("error")


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[SqlStore]:
    async with trio_asyncio.open_loop(), open_sql_store(url) as store:
        yield store


async def test_data_survives_close_and_reopen(sql_url: str, values: Any) -> None:
    org = values.org()
    conversation = values.conversation(org)
    session = values.session(conversation, created=1)
    message = values.message(session, created=2)
    async with opened(sql_url) as store:
        await store.add_org(org)
        await store.add_conversation(conversation)
        await store.add_session(session)
        await store.add_message(message)

    async with opened(sql_url) as store:
        assert await store.get_org(org.id) == org
        assert await store.get_session(org.id, session.id) == session
        assert await store.get_message(org.id, message.id) == message
        page = await store.list_conversations(org.id, is_archived=None, limit=5, offset=0)
        assert page.items == (attrs.evolve(conversation, updated_at=values.at(2)),)


async def test_database_file_is_in_wal_mode(sqlite_db_url: str) -> None:
    async with opened(sqlite_db_url):
        pass

    assert query(sqlite_db_url, "PRAGMA journal_mode") == [("wal",)]


async def test_schema_version_is_recorded_and_reopening_changes_nothing(
    sql_url: str, values: Any
) -> None:
    org = values.org()
    async with opened(sql_url) as store:
        await store.add_org(org)
    before = schema(sql_url)

    async with opened(sql_url) as store:
        assert await store.count_orgs() == 1

    versions = query(sql_url, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, CURRENT_VERSION + 1)]
    assert schema(sql_url) == before


async def test_a_database_from_newer_code_is_refused(sql_url: str) -> None:
    async with opened(sql_url):
        pass
    query(sql_url, "INSERT INTO schema_version (version) VALUES (99)")

    async with trio_asyncio.open_loop():
        with pytest.raises(SchemaTooNew, match="version 99") as refused:
            async with open_sql_store(sql_url):
                pass  # pragma: no cover
    assert isinstance(refused.value, StorageUnavailable)


async def test_every_expected_index_exists(sql_url: str) -> None:
    async with opened(sql_url):
        pass

    names = index_names(sql_url)
    assert {
        "tokens_by_hash",
        "tokens_by_org",
        "conversations_by_org",
        "conversations_by_org_archived",
        "chat_sessions_by_conversation",
        "chat_sessions_responding",
        "messages_by_conversation",
        "messages_by_session",
        "one_reply_per_session",
    } <= names


_PAGE = {"limit": 11, "offset": 0}
_INTERRUPT = {
    "status": "s",
    "finish_reason": "r",
    "error_code": "c",
    "error_message": "m",
    "at": "t",
}


@pytest.mark.parametrize(
    ("sql", "params", "index"),
    [
        (q.LIST_CONVERSATIONS, {"org_id": "o", **_PAGE}, "conversations_by_org"),
        (
            q.LIST_CONVERSATIONS_BY_ARCHIVED,
            {"org_id": "o", "is_archived": True, **_PAGE},
            "conversations_by_org_archived",
        ),
        (q.LIST_SESSIONS, {"conversation_id": "c", "org_id": "o"}, "chat_sessions_by_conversation"),
        (
            q.LIST_MESSAGES,
            {"conversation_id": "c", "org_id": "o", **_PAGE},
            "messages_by_conversation",
        ),
        (q.SESSION_MESSAGES, {"chat_session_id": "s", "org_id": "o"}, "messages_by_session"),
        (q.FIND_TOKEN, {"token_hash": "h", "at": "t"}, "tokens_by_hash"),
        (q.LIST_TOKENS, {"org_id": "o"}, "tokens_by_org"),
        (q.COUNT_IN_PROGRESS, {}, "one_reply_per_session"),
        (q.MARK_INTERRUPTED, _INTERRUPT, "one_reply_per_session"),
        (
            q.MARK_SESSION_INTERRUPTED,
            {**_INTERRUPT, "chat_session_id": "s", "org_id": "o"},
            "_",  # any index on messages (by session, in progress, one reply): a few rows
        ),
        (q.RECOVER_SESSIONS, {"status": "s", "at": "t"}, "chat_sessions_responding"),
    ],
)
async def test_list_queries_are_served_by_an_index(
    sql_url: str, sql: str, params: dict[str, Any], index: str
) -> None:
    async with opened(sql_url):
        pass

    plan, sorts = query_plan(sql_url, sql, params)
    assert index in plan and "INDEX" in plan.upper(), plan
    assert not sorts, plan  # no sorting outside the index


async def test_one_failing_write_in_a_batch_fails_alone(sql_url: str, values: Any) -> None:
    # On PostgreSQL the failed INSERT aborts the batch's whole transaction: the others must
    # still land, each retried in a transaction of its own on the same connection.
    org = values.org()
    existing = values.conversation(org)
    burst = [values.conversation(org, created=i) for i in range(1, 20)]
    burst.insert(7, existing)
    outcomes: dict[int, BaseException | None] = {}

    async def add(index: int, conversation: Any) -> None:
        try:
            await store.add_conversation(conversation)
        except StorageUnavailable as e:
            outcomes[index] = e
        else:
            outcomes[index] = None

    async with opened(sql_url) as store:
        await store.add_org(org)
        await store.add_conversation(existing)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for index, conversation in enumerate(burst):
                    nursery.start_soon(add, index, conversation)
        page = await store.list_conversations(org.id, is_archived=None, limit=50, offset=0)

    failed = {index: e for index, e in outcomes.items() if e is not None}
    assert list(failed) == [7]
    assert "duplicate id" in str(failed[7])
    assert isinstance(
        failed[7].__cause__, sqlite3.IntegrityError | asyncpg.IntegrityConstraintViolationError
    )
    assert len(page.items) == 20


async def test_a_burst_of_writes_shares_one_commit(sql_url: str, values: Any) -> None:
    # Counted where the actor reports each batch it ran as one transaction: SQLite's run on
    # the sqlite3 connection itself, not through `databases`' Transaction.
    batches: list[int] = []

    class Recorder(NoTelemetry):
        def storage_batch(self, size: int, seconds: float) -> None:
            batches.append(size)

    org = values.org()
    async with trio_asyncio.open_loop(), open_sql_store(sql_url, telemetry=Recorder()) as store:
        await store.add_org(org)
        batches.clear()
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(store.add_conversation, values.conversation(org, created=i))
        assert sum(batches) == 20 and len(batches) <= 2
        page = await store.list_conversations(org.id, is_archived=None, limit=50, offset=0)
        assert len(page.items) == 20


async def test_fifty_concurrent_writers_all_land(sql_url: str, values: Any) -> None:
    org = values.org()
    conversation = values.conversation(org)
    session = values.session(conversation)
    messages = [values.message(session, created=i, content=str(i)) for i in range(50)]

    async with opened(sql_url) as store:
        for write, value in (("add_org", org), ("add_conversation", conversation)):
            await getattr(store, write)(value)
        await store.add_session(session)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for message in messages:
                    nursery.start_soon(store.add_message, message)
        page = await store.list_messages(org.id, conversation.id, limit=100, offset=0)
        touched = await store.get_conversation(org.id, conversation.id)

    assert sorted(page.items, key=lambda m: int(m.content)) == messages
    assert touched is not None and touched.updated_at == values.at(49)


async def test_a_cancelled_caller_does_not_stop_the_actor(sql_url: str, values: Any) -> None:
    org = values.org()
    async with opened(sql_url) as store:
        with trio.CancelScope() as scope:
            scope.cancel()
            await store.add_org(org)
        # The request was already queued, so it still ran; the actor keeps serving.
        with trio.fail_after(5):
            assert await store.get_org(org.id) == org
            assert await store.count_orgs() == 1


async def test_sqlite_an_idle_store_hands_its_transaction_to_the_thread_directly(
    sqlite_db_url: str, values: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiosqlite's asyncio entry point (`_execute`) is the actor's way; an idle store skips
    # it. A burst still shares one transaction behind the one request that went straight.
    through_asyncio: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        through_asyncio.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    batches: list[int] = []

    class Recorder(NoTelemetry):
        def storage_batch(self, size: int, seconds: float) -> None:
            batches.append(size)

    org = values.org()
    async with (
        trio_asyncio.open_loop(),
        open_sql_store(sqlite_db_url, telemetry=Recorder()) as store,
    ):
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        await store.add_org(org)
        assert await store.get_org(org.id) == org
        assert through_asyncio == [] and batches[-2:] == [1, 1]
        batches.clear()
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(store.add_conversation, values.conversation(org, created=i))
        assert batches == [1, 9]  # the first went straight, the rest waited for the actor
        assert through_asyncio == ["_transaction_in_thread"]


async def test_sqlite_a_failed_direct_write_fails_alone_and_leaves_the_file_usable(
    sqlite_db_url: str, values: Any
) -> None:
    org = values.org()
    conversation = values.conversation(org)
    async with opened(sqlite_db_url) as store:
        await store.add_org(org)
        await store.add_conversation(conversation)
        with pytest.raises(StorageUnavailable, match="duplicate id") as raised:
            await store.add_conversation(conversation)
        assert isinstance(raised.value.__cause__, sqlite3.IntegrityError)
        later = values.conversation(org, created=1)
        await store.add_conversation(later)
        assert await store.get_conversation(org.id, later.id) == later


async def test_sqlite_a_transaction_left_open_is_rolled_back_before_the_next(
    sqlite_db_url: str, values: Any
) -> None:
    # What a failed ROLLBACK (a full disk) leaves: the connection inside a transaction, where
    # every later BEGIN would fail. The next transaction rolls it back first.
    org, stray = values.org(), values.org()
    async with opened(sqlite_db_url) as store:
        raw = store._actor._driver._raw  # type: ignore[union-attr]
        run = trio_asyncio.aio_as_trio(raw._execute)
        await run(raw._conn.execute, "BEGIN")
        await run(
            raw._conn.execute,
            "INSERT INTO orgs (id, name, created_at) VALUES (?, 'stray', '2026-01-01')",
            (str(stray.id),),
        )
        assert raw.in_transaction
        await store.add_org(org)
        assert await store.get_org(org.id) == org
        assert await store.get_org(stray.id) is None  # the stray write was rolled back


async def test_closing_answers_queued_requests_then_refuses_new_ones(
    sql_url: str, values: Any
) -> None:
    org = values.org()
    outcomes: list[BaseException | None] = []

    async def add(store: SqlStore, i: int) -> None:
        try:
            await store.add_conversation(values.conversation(org, created=i))
        except StorageUnavailable as e:
            outcomes.append(e)
        else:
            outcomes.append(None)

    with trio.fail_after(10):
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            async with open_sql_store(sql_url) as store:
                await store.add_org(org)
                for i in range(10):
                    nursery.start_soon(add, store, i)
                await trio.testing.wait_all_tasks_blocked()
            queued = len(outcomes)
            for i in range(5):
                nursery.start_soon(add, store, i)

    assert outcomes[:10] == [None] * 10 and queued <= 10
    assert all(isinstance(e, StorageUnavailable) for e in outcomes[10:]) and len(outcomes) == 15


async def test_calls_after_close_raise_storage_unavailable(sql_url: str, values: Any) -> None:
    org = values.org()
    async with opened(sql_url) as store:
        await store.add_org(org)

    with pytest.raises(StorageUnavailable, match="closed"):
        await store.get_org(org.id)
    with pytest.raises(StorageUnavailable, match="closed"):
        await store.add_conversation(values.conversation(org))
    with pytest.raises(StorageUnavailable, match="closed"):
        await store.recover_interrupted(values.at(1))


async def test_a_corrupt_database_file_gives_storage_unavailable(sqlite_db_url: str) -> None:
    file_of(sqlite_db_url).write_bytes(b"this is not an SQLite database " * 200)

    async with trio_asyncio.open_loop():
        with pytest.raises(StorageUnavailable, match="could not open the database") as refused:
            async with open_sql_store(sqlite_db_url):
                pass  # pragma: no cover
    assert isinstance(refused.value.__cause__, sqlite3.DatabaseError)


async def test_an_unreachable_database_path_gives_storage_unavailable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/conversations.db"

    async with trio_asyncio.open_loop():
        with pytest.raises(StorageUnavailable, match="could not open the database"):
            async with open_sql_store(url):
                pass  # pragma: no cover


async def test_opening_outside_a_trio_asyncio_loop_is_a_clear_error(sqlite_db_url: str) -> None:
    with pytest.raises(RuntimeError, match=r"trio_asyncio\.open_loop\(\)"):
        async with open_sql_store(sqlite_db_url):
            pass  # pragma: no cover


async def test_url_for_a_data_dir_creates_it_and_opens(tmp_path: Path, values: Any) -> None:
    data_dir = tmp_path / "with space" / "data"
    url = sqlite_url_for_dir(data_dir)

    assert url.startswith("sqlite+aiosqlite:///") and url.endswith("/conversations.db")
    async with opened(url) as store:
        await store.add_org(values.org())
    assert (data_dir / "conversations.db").is_file()


async def test_a_plain_sqlite_url_is_accepted(sqlite_db_url: str, values: Any) -> None:
    plain = sqlite_db_url.replace("sqlite+aiosqlite://", "sqlite://")
    async with opened(plain) as store:
        await store.add_org(values.org())
        assert await store.count_orgs() == 1


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("sqlite:///data/c.db", "sqlite+aiosqlite:///data/c.db"),
        ("sqlite+aiosqlite:///data/c.db", "sqlite+aiosqlite:///data/c.db"),
        ("postgresql://u:p@db.example/c", "postgresql://u:p@db.example/c"),
        ("postgres://u:p@db.example:5433/c", "postgresql://u:p@db.example:5433/c"),
        ("postgresql+asyncpg://u:p@db.example/c", "postgresql://u:p@db.example/c"),
    ],
)
def test_database_urls_name_the_driver_the_store_uses(url: str, normalised: str) -> None:
    assert normalise_url(url) == normalised


@pytest.mark.parametrize(
    "url", ["mysql://u:p@db.example/c", "postgresql+aiopg://db.example/c", "conversations.db"]
)
def test_other_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported database URL") as refused:
        normalise_url(url)
    assert "u:p" not in str(refused.value)  # a URL's password is never repeated


def test_postgresql_url_options_that_would_be_ignored_are_refused() -> None:
    # `databases` reads ssl and host only: sslmode=require would connect without TLS.
    with pytest.raises(ValueError, match=r"unsupported option\(s\) \['sslmode'\]"):
        normalise_url("postgresql://u:p@db.example/c?sslmode=require")
    assert normalise_url("postgres://u:p@db.example/c?ssl=verify-full") == (
        "postgresql://u:p@db.example/c?ssl=verify-full"
    )


async def test_ids_and_times_are_stored_as_canonical_text(sql_url: str, values: Any) -> None:
    org = values.org()
    plus_two = timezone(timedelta(hours=2))
    conversation = values.conversation(org)
    conversation = attrs.evolve(
        conversation, created_at=conversation.created_at.astimezone(plus_two)
    )
    async with opened(sql_url) as store:
        await store.add_org(org)
        await store.add_conversation(conversation)
        assert await store.get_conversation(org.id, conversation.id) == conversation

    [(stored_id, created_at)] = query(sql_url, "SELECT id, created_at FROM conversations")
    assert stored_id == str(conversation.id)
    assert created_at == "2026-11-26T06:02:59.123456Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", created_at)


async def test_a_naive_datetime_is_refused(sql_url: str, values: Any) -> None:
    org = attrs.evolve(values.org(), created_at=values.at(0).replace(tzinfo=None))
    async with opened(sql_url) as store:
        with pytest.raises(ValueError, match="naive datetime"):
            await store.add_org(org)


async def test_a_session_for_a_missing_conversation_is_refused(sql_url: str, values: Any) -> None:
    org = values.org()
    async with opened(sql_url) as store:
        await store.add_org(org)
        with pytest.raises(StorageUnavailable, match="missing conversation"):
            await store.add_session(values.session(values.conversation(org)))
        assert await store.count_orgs() == 1  # the actor is still serving


async def test_an_error_no_asyncio_task_awaited_is_logged_and_stops_nothing(
    sql_url: str, values: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # asyncpg can leave such an error behind (a pooled connection released in the background
    # after a timeout); trio-asyncio's own handler would raise it into the loop's nursery and
    # end every request the process serves.
    org = values.org()
    async with opened(sql_url) as store:
        loop = trio_asyncio.current_loop.get()
        assert loop is not None
        loop.call_exception_handler(
            {"message": "Task exception was never retrieved", "exception": TimeoutError()}
        )
        await trio.sleep(0.05)  # where the re-raised error would have ended the block
        await store.add_org(org)
        assert await store.get_org(org.id) == org
    assert "background work failed: Task exception was never retrieved" in caplog.text
