"""Hypercorn's trio worker, with a cap on open connections and a shutdown that answers.

Hypercorn's `serve` accepts without limit (each idle connection holds a file descriptor
until the process runs out of them) and, when it stops, closes its listening socket with
connections still queued in the kernel (each one reset, request and all). This worker runs
the same pieces (Hypercorn's lifespan, TCPServer and protocols) around its own accept loop:

- at most `max_connections` connections are served at once; one past that is answered 503
  `too_many_connections` and closed at once, in the accept loop itself, so the server never
  holds more than one socket beyond the cap, and only for that moment;
- `stop_listening` takes every connection the kernel has queued and closes the listening
  socket right after, in one step: later connection attempts are refused, and none that
  was accepted is reset;
- `stop` lets requests in flight finish (up to `config.graceful_timeout`), answers 503
  `shutting_down` to the rest and to any that arrive meanwhile, and closes idle connections.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ASGIFramework, LifespanState
from hypercorn.utils import repr_socket_addr, wrap_app

from conversation_service.entrypoints.http.answer_guard import HttpLifecycle
from conversation_service.entrypoints.http.connection import (
    CLOSE_DEADLINE,
    ServiceConnection,
    linger,
    refuse,
)

log = logging.getLogger("conversation_service.server")

# As trio.serve_listeners: out of descriptors or memory, wait a little and accept again.
_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
# A connection that went away while queued (Linux reports pending network errors on
# accept): nothing to do but take the next one. The same list as trio's SocketListener.
_GONE_ERRNOS = {
    getattr(errno, name)
    for name in (
        "ECONNABORTED", "EPROTO", "EPERM", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN", "ENONET",
        "EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH",
    )
    if hasattr(errno, name)
}  # fmt: skip
ACCEPT_BATCH = 64  # connections taken per wake-up before letting other tasks run
# Refused connections waiting for their client to close first; beyond, closed at once.
MAX_LINGERING = 64


class HttpServer:
    """The listening server; see the module docstring."""

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        *,
        lifecycle: HttpLifecycle,
        lifespan_state: LifespanState,
        max_connections: int,
        send_timeout: float,
        nursery: trio.Nursery,
    ) -> None:
        self.app = app
        self.config = config
        self.lifecycle = lifecycle
        self.max_connections = max_connections
        self.send_timeout = send_timeout
        self.context = WorkerContext(None)
        self.lifespan_state = lifespan_state  # what the app's startup left for requests
        self.base_urls: list[str] = []
        self._nursery = nursery
        self._connections: set[ServiceConnection] = set()
        self._changed = trio.Event()
        self._accepting: list[trio.CancelScope] = []  # one per listening socket
        self._refused = 0
        self._lingering = 0

    async def wait_for_no_connections(self) -> None:
        """Until every connection has ended."""
        while self._connections:
            await self._changed.wait()

    def stop_listening(self) -> None:
        """Refuse new connections from now on; answers close their connection."""
        self.lifecycle.draining = True
        for scope in self._accepting:
            scope.cancel()

    async def stop(self) -> None:
        """Finish or refuse what is in flight, close every connection, then return."""
        self.stop_listening()
        self.lifecycle.stop()  # new requests are answered 503; idle connections close
        with trio.move_on_after(self.config.graceful_timeout):
            await self.lifecycle.wait_for_requests()
        if self.lifecycle.requests_in_flight:
            log.info("%d requests still running: answering 503", self.lifecycle.requests_in_flight)
        self.lifecycle.cancel_requests()
        for connection in self._connections:
            connection.hurry(CLOSE_DEADLINE)
        with trio.move_on_after(2 * CLOSE_DEADLINE):
            await self.wait_for_no_connections()
        if self._connections:
            log.info("closing %d connections that did not end", len(self._connections))
        self._nursery.cancel_scope.cancel()

    async def listen(self, sock: socket.socket) -> None:
        accepting = trio.CancelScope()
        self._accepting.append(accepting)
        if self.lifecycle.draining:
            accepting.cancel()
        with sock:
            with accepting:
                while True:
                    await trio.lowlevel.wait_readable(sock)
                    if not self._accept_queued(sock, ACCEPT_BATCH):
                        await trio.sleep(0.1)  # out of descriptors: as trio.serve_listeners
            # Stopping: whatever the kernel has queued was sent by clients that connected
            # in time; take it (the queue holds `backlog`; the bound stops a flood from
            # keeping this loop going), then close (leaving `with sock`) with no await between.
            self._accept_queued(sock, 2 * self.config.backlog)

    def _accept_queued(self, sock: socket.socket, limit: int) -> bool:
        """Accept up to `limit` queued connections; False when out of capacity."""
        taken = 0
        while taken < limit:
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                return True
            except OSError as error:
                if error.errno in _GONE_ERRNOS:
                    continue
                if error.errno in _CAPACITY_ERRNOS:
                    log.error("accept failed (%s): retrying shortly", errno.errorcode[error.errno])
                    return False
                raise
            taken += 1
            if len(self._connections) >= self.max_connections:
                if self._refused % 100 == 0:
                    log.warning(
                        "%d connections open, the most allowed (max_connections): refusing more",
                        len(self._connections),
                    )
                self._refused += 1
                # Its close waits for the client's (a few at a time: held sockets count too).
                if refuse(conn):
                    if self._lingering < MAX_LINGERING:
                        self._lingering += 1
                        self._nursery.start_soon(self._linger, conn)
                    else:
                        conn.close()
            else:
                self._serve(conn)
        return True

    async def _linger(self, conn: socket.socket) -> None:
        try:
            await linger(conn)
        finally:
            self._lingering -= 1

    def _serve(self, conn: socket.socket) -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
        connection = ServiceConnection(
            self.app,
            self.config,
            self.context,
            self.lifespan_state.copy(),  # type: ignore[arg-type]
            stream,
            lifecycle=self.lifecycle,
            send_timeout=self.send_timeout,
        )
        self._connections.add(connection)  # counted from now, before its task starts
        self._nursery.start_soon(self._run, connection)

    async def _run(self, connection: ServiceConnection) -> None:
        try:
            await connection.run()
        except Exception:
            # One connection's failure is that connection's alone.
            log.exception("a connection failed")
        finally:
            self._connections.discard(connection)
            self._changed.set()
            self._changed = trio.Event()


@asynccontextmanager
async def open_http_server(
    app: ASGIFramework,
    config: Config,
    *,
    lifecycle: HttpLifecycle,
    max_connections: int,
    send_timeout: float,
) -> AsyncIterator[HttpServer]:
    """Serve `app` on `config.bind` until the block exits (then `stop`)."""
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        sockets = config.create_sockets().insecure_sockets  # each closed by its `listen`
        async with trio.open_nursery() as nursery:
            server = HttpServer(
                wrapped,
                config,
                lifecycle=lifecycle,
                lifespan_state=lifespan_state,
                max_connections=max_connections,
                send_timeout=send_timeout,
                nursery=nursery,
            )
            for sock in sockets:
                sock.listen(config.backlog)
                sock.setblocking(False)
                server.base_urls.append(
                    f"http://{repr_socket_addr(sock.family, sock.getsockname())}"
                )
                nursery.start_soon(server.listen, sock)
            try:
                yield server
            finally:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = (
                        trio.current_time() + config.graceful_timeout + 6 * CLOSE_DEADLINE
                    )
                    await server.stop()
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
