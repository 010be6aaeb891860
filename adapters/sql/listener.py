"""LISTEN on PostgreSQL: the cluster's notifications, on a connection of their own.

asyncpg delivers a notification to a callback on the asyncio side; it is handed to the trio
side through a memory channel (trio-asyncio runs both loops in one thread), and nothing of
asyncio leaves this module. A lost connection is opened again; the notifications sent
meanwhile are lost, which the cluster tolerates (whoever waits for one also polls).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg
import trio
import trio_asyncio

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT = 5.0
_PING_EVERY = 5.0  # a connection that died silently is noticed within this
_RETRY_AFTER = 1.0
_BACKLOG = 10_000  # notifications waiting to be handled; beyond it they are dropped


async def listen(
    url: str,
    channel: str,
    heard: Callable[[str], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Call `heard(payload)` for every notification on `channel`, until cancelled. Reports
    started once the first LISTEN is in place."""
    send, receive = trio.open_memory_channel[str](_BACKLOG)
    listening = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio_asyncio.aio_as_trio(_listen), url, channel, send, listening)
        await listening.wait()
        task_status.started()
        async with receive:
            async for payload in receive:
                try:
                    await heard(payload)
                except Exception:  # noqa: BLE001 - one notification's fault is not the listener's
                    log.exception("handling the notification %r failed", payload)


async def _listen(
    url: str, channel: str, send: trio.MemorySendChannel[str], listening: trio.Event
) -> None:
    dsn, options = _connect_arguments(url)

    def deliver(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            send.send_nowait(payload)
        except trio.WouldBlock:
            log.warning("dropped a notification: %d are waiting to be handled", _BACKLOG)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the listener is stopping: nobody is left to hear it

    failures = 0
    while True:
        connection: asyncpg.Connection | None = None
        try:
            connection = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT, **options)
            lost = asyncio.Event()
            connection.add_termination_listener(functools.partial(_set, lost))
            await connection.add_listener(channel, deliver)
            if failures:
                log.info("listening for the cluster's notifications again")
            failures = 0
            listening.set()
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), _PING_EVERY)
                except TimeoutError:
                    await asyncio.wait_for(connection.execute("SELECT 1"), _CONNECT_TIMEOUT)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            if not failures:
                log.warning("lost the cluster's notifications (reconnecting): %s", error)
            failures += 1
        finally:
            if connection is not None:
                connection.terminate()
        await asyncio.sleep(_RETRY_AFTER)


def _set(event: asyncio.Event, *_: Any) -> None:
    event.set()


def _connect_arguments(url: str) -> tuple[str, dict[str, Any]]:
    """asyncpg's DSN and options for a URL the store accepted (its `ssl` option kept)."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    scheme = "postgresql"
    dsn = urlunsplit((scheme, parts.netloc, parts.path, "", ""))
    return dsn, {"ssl": options["ssl"]} if "ssl" in options else {}
