"""The storage actor: one asyncio task that owns the only database connection.

Callers on trio post requests to its queue and wait on a trio.Event. The actor takes every
request waiting in the queue and runs them in one transaction, so a burst of writes costs
one commit. When that transaction fails, it runs the same requests again one by one, each in
its own transaction, so a bad request fails alone. The asyncio objects never leave this
module: callers see plain `async def` calls and StorageUnavailable.

SQLite's requests skip the actor when it is idle: a caller that finds no request queued or
running hands its transaction straight to aiosqlite's thread, which reports back to trio
(`_DirectOutcome`). The actor's two trips through asyncio cost more than the transaction
of a reply's start does, and they are on the way to its first words. Requests that come
while one is running queue for the actor and are batched as above: aiosqlite's thread runs
the calls it is handed in order, one transaction each. PostgreSQL's requests always go
through the actor (asyncpg lives on the asyncio loop).

A database server can go away (restarted, out of reach) and come back. Requests that were
running when the connection was lost fail with StorageUnavailable; the next request first
opens a new connection, giving up after `reconnect_deadline`. If that fails, it fails, and so
does every request that waited meanwhile; the request after them tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import databases
import trio
import trio_asyncio
from databases.core import Connection

from conversation_service.adapters.sql.dialects import (
    INTEGRITY_ERRORS,
    connection_lost,
    driver_connection,
)
from conversation_service.adapters.sql.statements import DriverConnection, Work
from conversation_service.domain.errors import DomainError
from conversation_service.ports.storage import StaleVersion, StorageUnavailable
from conversation_service.ports.telemetry import NO_TELEMETRY, Telemetry

log = logging.getLogger(__name__)

MAX_BATCH = 256  # bounds one transaction's size and how long it holds the write lock

# Closing a connection (or what is left of a lost one) gives up after this.
_CLOSE_DEADLINE = 5.0


class _Request:
    __slots__ = ("work", "result", "error", "done")

    def __init__(self, work: Work) -> None:
        self.work = work
        self.result: Any = None
        self.error: DomainError | None = None
        self.done = trio.Event()  # set from the asyncio side: fine under trio-asyncio


class StorageActor:
    """Serves database work from many trio tasks over one connection, batching transactions.

    `open_database` makes a new, unconnected `databases.Database` for each connection the
    actor opens; `setup` runs on each new connection before any request (the migrations).
    Reopening a lost connection gives up after `reconnect_deadline` seconds (None: no limit);
    the first opening has none, so that a long migration can finish. Each batch's size and
    time are reported to `telemetry`.
    """

    def __init__(
        self,
        open_database: Callable[[], databases.Database],
        setup: Callable[[Connection], Awaitable[None]],
        *,
        reconnect_deadline: float | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._open_database = open_database
        self._telemetry = telemetry
        self._setup = setup
        self._reconnect_deadline = reconnect_deadline
        self._queue: asyncio.Queue[_Request | None] = asyncio.Queue()
        self._in_flight: list[_Request] = []
        self._accepting = False
        self._ready = trio.Event()
        self._finished = trio.Event()
        self._setup_error: DomainError | None = None
        # The open connection, while there is one (asyncio side only).
        self._exits: contextlib.AsyncExitStack | None = None
        self._connection: Connection | None = None
        self._driver: DriverConnection | None = None
        self._failed_reconnects = 0  # since the last connection: logged once, not every time
        self._direct = 0  # requests handed straight to the driver's thread, still running
        self._token: trio.lowlevel.TrioToken | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, run `setup`, report started, then serve until stop()."""
        self._token = trio.lowlevel.current_trio_token()
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
        if not self._hand_off(request):
            self._queue.put_nowait(request)
        # A caller cancelled here leaves the request to run; the actor never waits on callers.
        await request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def _hand_off(self, request: _Request) -> bool:
        """Hand `request` straight to the driver's thread when it can take it and the actor
        has nothing queued or running; False when it is the actor's to run."""
        driver = self._driver
        hand_off = getattr(driver, "hand_off", None)
        if (
            hand_off is None
            or self._direct
            or self._in_flight
            or not self._queue.empty()
            or self._token is None
        ):
            return False
        assert driver is not None
        started = time.perf_counter()

        def finish(results: list[Any] | None, error: Exception | None) -> None:
            self._direct -= 1
            if error is None:
                assert results is not None
                request.result = results[0]
            elif connection_lost(error, driver):
                request.error = translate_error(error, "lost the connection to the database")
            else:
                request.error = translate_error(error)  # rolled back in the thread
            self._telemetry.storage_batch(1, time.perf_counter() - started)
            request.done.set()

        try:
            hand_off([request.work], _DirectOutcome(self._token, finish))
        except ValueError:  # closed under us: the actor reopens it, or fails the request
            return False
        self._direct += 1
        return True

    async def stop(self) -> None:
        """Refuse new requests, let the queued ones finish, and wait for the actor to end."""
        if self._accepting:
            self._accepting = False
            self._queue.put_nowait(None)
        await self._finished.wait()

    # -- the asyncio side ------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            try:
                await self._open(deadline=None)
            except Exception as e:
                self._setup_error = translate_error(e, "could not open the database")
                return
            self._accepting = True
            self._ready.set()
            # A fault here is the actor's own, not one request's: the nursery sees it.
            await self._serve_queue()
        finally:
            self._accepting = False
            try:
                await self._drop_connection()
            finally:
                self._fail_pending()
                self._ready.set()
                self._finished.set()

    async def _open(self, deadline: float | None) -> None:
        database = self._open_database()
        exits = contextlib.AsyncExitStack()
        try:
            async with asyncio.timeout(deadline):
                await database.connect()
                exits.push_async_callback(database.disconnect)
                connection = await exits.enter_async_context(database.connection())
                await self._setup(connection)
        except TimeoutError as e:
            await _close(exits)
            raise StorageUnavailable("the database did not answer in time") from e
        except Exception:
            await _close(exits)
            raise
        self._exits, self._connection = exits, connection
        self._driver = driver_connection(database.url.dialect, connection.raw_connection)

    async def _drop_connection(self) -> None:
        exits, self._exits = self._exits, None
        self._connection = self._driver = None
        if exits is not None:
            await _close(exits)

    async def _serve_queue(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight = [request for request in batch if request is not None]
            if self._in_flight and await self._connected():
                started = time.perf_counter()
                await self._run_batch(self._in_flight)
                self._telemetry.storage_batch(len(self._in_flight), time.perf_counter() - started)
            for request in self._in_flight:
                request.done.set()
            self._in_flight = []
            if None in batch:
                return

    async def _connected(self) -> bool:
        """Whether a connection is open, opening one if the last was lost. When none can be
        opened, the requests in flight and every one queued meanwhile fail."""
        if self._driver is not None and not self._driver.is_closed():
            return True
        await self._drop_connection()
        try:
            await self._open(deadline=self._reconnect_deadline)
        except Exception as e:
            if not self._failed_reconnects:
                log.warning("could not reconnect to the database (trying again with each "
                            "request): %s: %s", type(e).__name__, e)  # fmt: skip
            self._failed_reconnects += 1
            waiting = self._take_queued()
            for request in self._in_flight + waiting:
                request.error = translate_error(e, "could not reconnect to the database")
            for request in waiting:
                request.done.set()
            return False
        failed, self._failed_reconnects = self._failed_reconnects, 0
        log.info("reconnected to the database%s", f" ({failed} attempts failed)" if failed else "")
        return True

    async def _run_batch(self, batch: list[_Request]) -> None:
        error = await self._transaction(batch)
        if error is None:
            return
        if self._driver is None:  # the connection was lost: nothing more runs on it
            _fail_lost(batch, error)
            return
        if len(batch) == 1:
            batch[0].error = translate_error(error)
            return
        for index, request in enumerate(batch):
            error = await self._transaction([request])
            if error is None:
                continue
            if self._driver is None:
                _fail_lost(batch[index:], error)
                return
            request.error = translate_error(error)

    async def _transaction(self, requests: list[_Request]) -> Exception | None:
        """Run `requests` in one transaction. On failure, the error; the connection is then
        ready for the next transaction, or dropped (self._driver is None) if it was lost."""
        assert self._connection is not None and self._driver is not None
        driver = self._driver
        for request in requests:
            request.result = None
        try:
            results = await driver.run_transaction([request.work for request in requests])
            for request, result in zip(requests, results, strict=True):
                request.result = result
            return None
        except Exception as error:
            lost: Exception = error
            if not connection_lost(error, driver):
                try:
                    await driver.leave_failed_transaction()
                    return error
                except Exception as cleanup_error:  # stuck in the transaction, or lost now
                    lost = cleanup_error
            log.warning("dropping the database connection: %s: %s", type(lost).__name__, lost)
            await self._drop_connection()
            return error

    def _take_queued(self) -> list[_Request]:
        taken: list[_Request] = []
        stopping = False
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if request is None:
                stopping = True
            else:
                taken.append(request)
        if stopping:
            self._queue.put_nowait(None)
        return taken

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


class _DirectOutcome:
    """Stands in for the asyncio future aiosqlite's thread reports to: its
    `get_loop().call_soon_threadsafe(set_result, self, result)` runs on trio's thread, where
    `finish` gets the results or the error. (A ThreadOutcome, structurally.)"""

    __slots__ = ("_token", "_finish", "_done")

    def __init__(
        self,
        token: trio.lowlevel.TrioToken,
        finish: Callable[[list[Any] | None, Exception | None], None],
    ) -> None:
        self._token = token
        self._finish = finish
        self._done = False

    def get_loop(self) -> _DirectOutcome:
        return self

    def call_soon_threadsafe(self, callback: Callable[..., None], *args: Any) -> None:
        # From aiosqlite's thread. Once trio's run is over nothing waits for the outcome.
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(callback, *args)

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Any) -> None:
        self._done = True
        self._finish(result, None)

    def set_exception(self, error: BaseException) -> None:
        self._done = True
        if not isinstance(error, Exception):  # not raised by SQL: reported, not re-raised
            error = RuntimeError(f"the database thread stopped: {error!r}")
        self._finish(None, error)


async def _close(exits: contextlib.AsyncExitStack) -> None:
    # A lost connection can take long to notice it is gone: bounded, and never raised, since
    # the caller is already failing or replacing it.
    try:
        async with asyncio.timeout(_CLOSE_DEADLINE):
            await exits.aclose()
    except Exception as e:  # noqa: BLE001 - logged: nothing else to do with a dead connection
        log.warning("closing the database connection failed: %s: %s", type(e).__name__, e)


def _fail_lost(requests: list[_Request], error: Exception) -> None:
    for request in requests:
        request.error = translate_error(error, "lost the connection to the database")


# The unique index one_reply_per_session, as PostgreSQL and SQLite name it in their errors.
_SECOND_REPLY = re.compile(
    r"one_reply_per_session|UNIQUE constraint failed: messages\.chat_session_id"
)


def translate_error(error: Exception, doing: str = "the database failed") -> DomainError:
    """The StorageUnavailable to raise for a library error (StaleVersion for a session's
    second reply in progress), with the error as its cause."""
    if isinstance(error, DomainError):  # StorageUnavailable, StaleVersion: already ours
        return error
    if isinstance(error, INTEGRITY_ERRORS) and _SECOND_REPLY.search(str(error)):
        translated: DomainError = StaleVersion(f"the session has a reply in progress: {error}")
    elif isinstance(error, INTEGRITY_ERRORS):
        translated = StorageUnavailable(
            f"the write conflicts with stored data (a duplicate id or token hash, or a "
            f"missing conversation, session or organisation): {error}"
        )
    else:
        said = f": {error}" if str(error) else ""  # TimeoutError says nothing
        translated = StorageUnavailable(f"{doing}: {type(error).__name__}{said}")
    translated.__cause__ = error  # raised later, on the trio side: `from e` by hand
    return translated
