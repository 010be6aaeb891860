"""Opening and closing the SQL store: the database URL, the actor's lifetime.

The store runs on asyncio libraries, so it must be opened inside trio-asyncio's loop:
`async with trio_asyncio.open_loop(): async with open_sql_store(url) as store: ...`.
The URL is a SQLite file's (`sqlite:///path`) or a PostgreSQL server's
(`postgresql://user:password@host:port/database`); dialects.py says how the two differ.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import databases
import trio
import trio_asyncio

from conversation_service.adapters.sql.dialects import (
    RECONNECT_DEADLINE,
    SQLITE,
    database_options,
    dialect_of,
    normalise_url,
)
from conversation_service.adapters.sql.schema import prepare_database
from conversation_service.adapters.sql.sql_store import SqlStore
from conversation_service.adapters.sql.storage_actor import StorageActor
from conversation_service.ports.storage import StorageUnavailable
from conversation_service.ports.telemetry import NO_TELEMETRY, Telemetry

log = logging.getLogger(__name__)

DATABASE_FILE = "conversations.db"

# Long enough for a batch waiting out SQLite's 5 s busy timeout, short enough for a shutdown.
_CLOSE_DEADLINE = 6.0


def sqlite_url_for_dir(data_dir: Path) -> str:
    """The URL of the database file in `data_dir`, creating the directory if needed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = (data_dir / DATABASE_FILE).resolve()
    return f"sqlite+aiosqlite:///{quote(str(path))}"


@asynccontextmanager
async def open_sql_store(
    url: str, *, telemetry: Telemetry = NO_TELEMETRY
) -> AsyncIterator[SqlStore]:
    """Connect, migrate and serve the store until the block ends; then close it cleanly.

    Requests still queued at the end are answered; after that every call raises
    StorageUnavailable. Raises StorageUnavailable if the database cannot be opened, and
    RuntimeError when not inside `trio_asyncio.open_loop()`.
    """
    _require_trio_asyncio_loop()
    normalised, dialect = normalise_url(url), dialect_of(url)
    options = database_options(dialect)
    if dialect == SQLITE:
        await _check_sqlite_file(databases.DatabaseURL(normalised).database)
    actor = StorageActor(
        lambda: databases.Database(normalised, **options),
        setup=functools.partial(prepare_database, dialect=dialect),
        reconnect_deadline=RECONNECT_DEADLINE,
        telemetry=telemetry,
    )
    not_opened: StorageUnavailable | None = None
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(actor.run)
        except StorageUnavailable as e:
            not_opened = e  # re-raised below, so that it is not wrapped in an ExceptionGroup
        else:
            try:
                yield SqlStore(actor, dialect=dialect)
            finally:
                with trio.move_on_after(_CLOSE_DEADLINE, shield=True):
                    await actor.stop()
                # Only does something if the actor overran the deadline: its task is
                # cancelled and whatever it still held is failed with StorageUnavailable.
                nursery.cancel_scope.cancel()
    if not_opened is not None:
        raise not_opened


async def _check_sqlite_file(path: str) -> None:
    # When aiosqlite fails to connect, its worker thread later posts to the event loop, which
    # blows up in that thread if the loop has closed meanwhile. A plain sqlite3 probe in a
    # thread finds the same faults (no such directory, no permission) cleanly, first.
    if path in ("", ":memory:"):
        return
    try:
        await trio.to_thread.run_sync(_open_and_close, path)
    except (sqlite3.Error, OSError) as e:
        raise StorageUnavailable(f"could not open the database {path!r}: {e}") from e


def _open_and_close(path: str) -> None:
    sqlite3.connect(path).close()


def _require_trio_asyncio_loop() -> None:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        raise RuntimeError("open_sql_store() must be called from a trio task") from None
    loop = trio_asyncio.current_loop.get()
    if loop is None:
        raise RuntimeError(
            "open_sql_store() needs a trio-asyncio loop: call it inside "
            "`async with trio_asyncio.open_loop():`"
        )
    # trio-asyncio's own handler re-raises an error that no asyncio task awaited (asyncpg
    # releasing a pooled connection in the background after a timeout, say) into the loop's
    # nursery, which would stop the whole server for one connection's fault: log it instead.
    loop.set_exception_handler(_log_unawaited_error)


def _log_unawaited_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    log.warning(
        "the database driver's background work failed: %s",
        context.get("message", "unhandled error"),
        exc_info=context.get("exception"),
    )
