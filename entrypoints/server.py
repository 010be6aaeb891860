"""`conversation-service serve`: Hypercorn's trio worker inside one trio-asyncio loop.

Shutdown (SIGTERM or SIGINT): stop listening (new connections are refused; requests on open
ones are still answered, each answer closing its connection), stop taking messages, let
running replies finish for up to `shutdown_grace` seconds, cancel the rest (stored as
incomplete, their streams told "shutting_down"), then stop the HTTP server (requests still
in flight finish or are answered 503 `shutting_down`, idle connections are closed) and exit 0.
"""

from __future__ import annotations

import atexit
import gc
import logging
import logging.handlers
import queue
import resource
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
import trio_asyncio
from hypercorn.config import Config

from conversation_service.domain.model import AccessRole
from conversation_service.entrypoints.bootstrap import Services, open_services
from conversation_service.entrypoints.http.answer_guard import AnswerGuard, HttpLifecycle
from conversation_service.entrypoints.http.app import create_app
from conversation_service.entrypoints.http.connection import CLOSE_DEADLINE
from conversation_service.entrypoints.http.hypercorn_worker import HttpServer, open_http_server
from conversation_service.entrypoints.settings import Settings, SettingsError
from conversation_service.entrypoints.structured_logs import (
    TEXT_FORMAT,
    ContextFields,
    JsonLines,
    QueuedRecords,
)

log = logging.getLogger("conversation_service")


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None  # the app logs each request once (entrypoints/http/access_log.py)
    config.errorlog = logging.getLogger("conversation_service.server")
    config.graceful_timeout = 5.0
    config.h11_max_incomplete_size = 16 * 1024  # request line + headers
    # No read_timeout: Hypercorn applies it to every read of the connection, and an SSE
    # client sends nothing while it listens, so it would cut long streams. Slow request
    # heads are bounded by keep_alive_timeout (the connection counts as idle until a whole
    # request head arrived) and slow bodies by Quart's BODY_TIMEOUT.
    config.keep_alive_timeout = settings.keep_alive_timeout
    return config


# Descriptors the process needs besides its client connections: the database and its
# journal, connections to model providers, trio's own, stdio.
FD_RESERVE = 128


def ensure_descriptors(max_connections: int) -> None:
    """Raise the soft limit on open files when `max_connections` needs it (up to the hard
    limit); refuse to start when even that is too low."""
    need = max_connections + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard == resource.RLIM_INFINITY or hard >= need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        return
    raise SettingsError(
        f"max_connections {max_connections} needs {need} open files, and this process may "
        f"open {hard} at most (ulimit -n): lower max_connections or raise the limit"
    )


async def _first_run(services: Services, base_url: str) -> None:
    """On an empty database: an organisation and an admin token, printed once."""
    if await services.store.count_orgs() > 0:
        return
    org = await services.admin.create_org("default")
    issued = await services.admin.create_token(org.id, AccessRole.ADMIN)
    print(
        "First start: created organisation 'default' and an admin token.\n"
        f"  org_id: {org.id}\n"
        f"  token:  {issued.token}\n"
        "The token is shown only this once. Try it in the playground (paste both):\n"
        f"  {base_url}/playground\n"
        "or with curl:\n"
        f"  curl -X POST '{base_url}/api/conversation/create?org_id={org.id}' "
        f"-H 'Authorization: Bearer {issued.token}' -H 'Content-Type: application/json' "
        '-d \'{"title": "Hello"}\'',
        flush=True,
    )


@attrs.frozen(kw_only=True)
class RunningServer:
    services: Services
    base_url: str
    http: HttpServer


@asynccontextmanager
async def running_server(
    settings: Settings, *, app_config: dict[str, object] | None = None
) -> AsyncIterator[RunningServer]:
    """The service listening on HTTP; leaving the block shuts it down gracefully.

    `app_config` overrides Quart settings (tests use it to shorten Quart's timeouts).
    """
    ensure_descriptors(settings.max_connections)
    async with trio_asyncio.open_loop(), open_services(settings) as services:
        lifecycle = HttpLifecycle()
        app = create_app(services.http, lifecycle)
        app.config.update(app_config or {})
        guarded = AnswerGuard(app, lifecycle, send_deadline=settings.send_timeout + CLOSE_DEADLINE)
        async with open_http_server(
            guarded,
            hypercorn_config(settings),
            lifecycle=lifecycle,
            max_connections=settings.max_connections,
            send_timeout=settings.send_timeout,
        ) as http:
            try:
                yield RunningServer(services=services, base_url=http.base_urls[0], http=http)
            finally:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + settings.shutdown_grace + 15
                    http.stop_listening()
                    await _shut_down(services, settings)
                    await http.stop()


# Container objects made (and not freed) between two collections of the youngest generation.
YOUNG_COLLECTION_THRESHOLD = 10_000


async def serve(settings: Settings) -> None:
    """Run the service until SIGTERM or SIGINT."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with running_server(settings) as server:
            await _first_run(server.services, server.base_url)
            _freeze_what_start_made()
            print(f"Conversation Service ready on {server.base_url}", flush=True)
            log.info("ready on %s", server.base_url)
            async for signum in signals:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                break
    log.info("stopped")


def _freeze_what_start_made() -> None:
    """Keep the cyclic garbage collector off what serving does not need collected.

    What starting made (modules, the app and its routes, the registry: about 100,000
    objects) lives as long as the process: frozen, a full collection no longer scans it.
    Scanned, a full collection under load took 60-95 ms, a pause every stream felt. And a
    young collection waits for 10,000 more container objects than were freed, not 700: a
    request's objects are freed by their reference counts as it ends, so under load the
    default ran about 100 young collections a second (4% of the CPU) that found little.
    Cycles made while serving are still collected.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


async def _shut_down(services: Services, settings: Settings) -> None:
    supervisor = services.supervisor
    supervisor.stop_accepting()
    if not await supervisor.drain(settings.shutdown_grace):
        log.info("grace period over: cancelling the replies still running")
    await supervisor.stop()


def run(settings: Settings) -> int:
    trio.run(serve, settings)
    return 0


def configure_logging(log_format: str = "text") -> None:
    """Log lines to stderr, written by a thread of their own: `text` (one line a record, as
    TEXT_FORMAT says) or `json` (one JSON object a line, see structured_logs.JsonLines).

    A line a request (the access log) written and flushed on the event loop cost about a
    twentieth of a cheap request's time; queued, the loop only makes the message. The queue
    is drained at exit (atexit), so the last lines are not lost. The ids a line is about are
    taken from the context as it is logged (structured_logs.ContextFields).
    """
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(lines, handler)
    listener.start()
    atexit.register(listener.stop)
    # It makes the message (the arguments merged in) and the listener's handler the line.
    queued = QueuedRecords(lines)
    queued.addFilter(ContextFields())
    logging.basicConfig(level=logging.INFO, handlers=[queued])
