"""The storage actor: one asyncio task that owns the only database connection.

Callers on trio post requests to its queue and wait on a trio.Event. The actor takes every
request waiting in the queue and runs them in one transaction, so a burst of writes costs
one commit. When that transaction fails, it runs the same requests again one by one, each in
its own transaction, so a bad request fails alone. The asyncio objects never leave this
module: callers see plain `async def` calls and StorageUnavailable.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import databases
import sqlalchemy.exc
import trio
import trio_asyncio
from databases.core import Connection

from conversation_service.adapters.sql.statements import SqliteStatements, Statements
from conversation_service.domain.errors import DomainError
from conversation_service.ports.storage import StorageUnavailable

Work = Callable[[Statements], Awaitable[Any]]
"""A unit of database work, run by the actor on its connection inside a transaction."""

MAX_BATCH = 256  # bounds one transaction's size and how long it holds the write lock


class _Request:
    __slots__ = ("work", "result", "error", "done")

    def __init__(self, work: Work) -> None:
        self.work = work
        self.result: Any = None
        self.error: DomainError | None = None
        self.done = trio.Event()  # set from the asyncio side: fine under trio-asyncio


class StorageActor:
    """Serves database work from many trio tasks over one connection, batching transactions."""

    def __init__(
        self, database: databases.Database, setup: Callable[[Connection], Awaitable[None]]
    ) -> None:
        self._database = database
        self._setup = setup
        self._queue: asyncio.Queue[_Request | None] = asyncio.Queue()
        self._in_flight: list[_Request] = []
        self._accepting = False
        self._ready = trio.Event()
        self._finished = trio.Event()
        self._setup_error: DomainError | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, run `setup`, report started, then serve until stop()."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio_asyncio.aio_as_trio(self._serve))
            await self._ready.wait()
            if self._setup_error is None:
                task_status.started()
        # Raised before started(), so nursery.start() re-raises it as it is.
        if self._setup_error is not None:
            raise self._setup_error

    async def call(self, work: Work) -> Any:
        """Run `work` in the actor and return its result; StorageUnavailable on failure."""
        if not self._accepting:
            raise StorageUnavailable("the store is closed")
        request = _Request(work)
        self._queue.put_nowait(request)
        # A caller cancelled here leaves the request to run; the actor never waits on callers.
        await request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    async def stop(self) -> None:
        """Refuse new requests, let the queued ones finish, and wait for the actor to end."""
        if self._accepting:
            self._accepting = False
            self._queue.put_nowait(None)
        await self._finished.wait()

    # -- the asyncio side ------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            await self._database.connect()
            try:
                async with self._database.connection() as connection:
                    await self._setup(connection)
                    self._accepting = True
                    self._ready.set()
                    await self._serve_queue(connection)
            finally:
                await self._database.disconnect()
        except Exception as e:
            if self._ready.is_set():
                raise  # a fault of the actor itself, not of one request: let the nursery see it
            self._setup_error = translate_error(e, "could not open the database")
        finally:
            self._accepting = False
            self._fail_pending()
            self._ready.set()
            self._finished.set()

    async def _serve_queue(self, connection: Connection) -> None:
        statements = SqliteStatements(connection.raw_connection)
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight = [request for request in batch if request is not None]
            await self._run_batch(connection, statements, self._in_flight)
            for request in self._in_flight:
                request.done.set()
            self._in_flight = []
            if None in batch:
                return

    async def _run_batch(
        self, connection: Connection, statements: Statements, batch: list[_Request]
    ) -> None:
        if not batch:
            return
        try:
            async with connection.transaction():
                for request in batch:
                    request.result = await request.work(statements)
            return
        except Exception as e:
            await _leave_failed_transaction(connection)
            if len(batch) == 1:
                batch[0].error = translate_error(e)
                return
        for request in batch:
            request.result = None
            try:
                async with connection.transaction():
                    request.result = await request.work(statements)
            except Exception as e:
                await _leave_failed_transaction(connection)
                request.error = translate_error(e)

    def _fail_pending(self) -> None:
        pending = [r for r in self._in_flight if not r.done.is_set()]
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if request is not None:
                pending.append(request)
        for request in pending:
            request.error = StorageUnavailable("the store closed before the request completed")
            request.done.set()
        self._in_flight = []


async def _leave_failed_transaction(connection: Connection) -> None:
    # A failed COMMIT (SQLITE_BUSY, a full disk) leaves SQLite inside the transaction, and
    # every later BEGIN on this one connection would then fail too.
    raw = connection.raw_connection
    if getattr(raw, "in_transaction", False):
        try:
            await raw.rollback()
        except Exception:  # noqa: BLE001 - the next request reports a connection that stays broken
            pass


def translate_error(error: Exception, doing: str = "the database failed") -> DomainError:
    """The StorageUnavailable to raise for a library error, with the error as its cause."""
    if isinstance(error, DomainError):  # StorageUnavailable, StaleVersion: already ours
        return error
    if isinstance(error, sqlite3.IntegrityError | sqlalchemy.exc.IntegrityError):
        translated = StorageUnavailable(
            f"the write conflicts with stored data (a duplicate id or token hash, or a "
            f"missing conversation, session or organisation): {error}"
        )
    else:
        translated = StorageUnavailable(f"{doing}: {type(error).__name__}: {error}")
    translated.__cause__ = error  # raised later, on the trio side: `from e` by hand
    return translated
