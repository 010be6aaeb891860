"""One client connection: Hypercorn's trio TCPServer with the answers and bounds we need.

- A write timeout. Hypercorn writes every chunk with `send_all` inside a *shielded* cancel
  scope with no deadline, so a client that never reads (a stalled tab, a slow-loris) blocks
  its connection task for ever: its stream never ends, its org's stream slot is never freed,
  and the server cannot shut down. nginx's `send_timeout` answers the same problem; here the
  shielded write gets a deadline and the connection is closed when it passes. Readers
  dropped this way can re-attach with Last-Event-ID.
- JSON bodies on the answers Hypercorn's h11 layer makes itself, before any app runs (a
  request head over `h11_max_incomplete_size` is 431, an unparsable one 400): Hypercorn
  sends them with an empty body; ours carry `{"error": ...}` and an X-Request-Id like every
  other answer.
- When the server stops, an idle connection is not closed under a client that is sending
  its next request: one answered a moment ago (likely to send again at once) is kept for
  up to IDLE_LINGER, and one on which a request has begun to arrive is answered 503.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from functools import partial

import h11
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, LifespanState

from conversation_service.entrypoints.http import access_log
from conversation_service.entrypoints.http.answer_guard import STOPPING_MESSAGE, HttpLifecycle
from conversation_service.entrypoints.http.errors import code_for_status, error_json, request_id_for

log = logging.getLogger("conversation_service.server")

CLOSE_DEADLINE = 2.0  # seconds a socket's own close (FIN, then close) may take
# Stopping, seconds an idle connection that had an answer this recently is kept for the
# request its client may be sending (answered 503, Connection: close). Closing it at once
# would race that request: the client would see its connection closed without an answer.
IDLE_LINGER = 1.0

_MESSAGES = {
    400: "the request could not be read as HTTP/1.1",
    431: "request headers are over {limit} bytes",
}


class ServiceConnection(TCPServer):
    """A plain-HTTP connection (this service does not terminate TLS)."""

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        state: LifespanState,
        stream: trio.SocketStream,
        *,
        lifecycle: HttpLifecycle,
        send_timeout: float,
    ) -> None:
        super().__init__(app, config, context, state, stream)  # type: ignore[arg-type]
        self.lifecycle = lifecycle
        self.send_timeout = send_timeout
        self._sending: trio.CancelScope | None = None
        self._idle_since = trio.current_time()
        self._read_all = False  # the client closed its side (or the socket is closed)

    def hurry(self, seconds: float) -> None:
        """Give a write in progress at most `seconds` more (the server is stopping)."""
        if self._sending is not None:
            self._sending.deadline = min(self._sending.deadline, trio.current_time() + seconds)

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            if isinstance(event, Updated) and event.idle:
                self._idle_since = trio.current_time()
            await super().protocol_send(event)
            return
        data = event.data
        # Most writes fit the socket's buffer: written here at once, with no lock, no cancel
        # scope and no trip through the scheduler. The rest is written under the lock and
        # the deadline; once part of a chunk is out, a cancelled caller still writes the rest.
        written = 0 if self.send_lock.locked() else self._write_now(data)
        if written is None:
            await self.protocol.handle(Closed())
        elif written == len(data):
            return
        elif written:
            with trio.CancelScope(shield=True):
                await self._send_bounded(data[written:])
        else:
            await self._send_bounded(data)

    def _write_now(self, data: bytes) -> int | None:
        """How much of `data` the socket took without waiting; None when it is gone."""
        if not data:
            return 0
        try:
            return os.write(self.stream.socket.fileno(), data)
        except BlockingIOError:
            return 0
        except OSError:  # the client is gone (EPIPE, ECONNRESET), or the socket closed
            return None

    async def _send_bounded(self, data: bytes) -> None:
        async with self.send_lock:
            try:
                # Still shielded (a half-written chunk would corrupt the stream), but
                # no longer unbounded.
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + self.send_timeout
                    self._sending = scope
                    await self.stream.send_all(data)
                self._sending = None
                if scope.cancelled_caught:
                    log.info("dropping a client that stopped reading")
                    await self.stream.aclose()
                    raise trio.ClosedResourceError("client stopped reading")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await self.protocol.handle(Closed())

    async def _read_data(self) -> None:
        # The protocol exists by now and nothing has been read yet.
        inner = self.protocol.protocol
        if isinstance(inner, H11Protocol):
            inner._send_error_response = partial(send_json_error, inner)  # type: ignore[method-assign]
        await super()._read_data()
        # Nothing more will arrive. Hypercorn leaves the idle timer running, and the
        # connection (its socket too) waits for it: up to keep_alive_timeout after the
        # client has gone, each one holding a descriptor and a place under the cap.
        self._read_all = True
        await self.idle_task.stop()

    async def _idle_timeout(self) -> None:
        # Hypercorn's, waiting on our stop rather than on `context.terminated`: once that is
        # set, Hypercorn also closes every connection as its answer ends, even an answer
        # that began before the shutdown and told the client it could send another request.
        # Here such a client gets IDLE_LINGER to send it. A request arriving cancels this
        # task (the protocol stops the idle timer): it is answered, and the connection
        # closed after it.
        if not self._read_all:
            with trio.move_on_after(self.config.keep_alive_timeout):
                await self.lifecycle.wait_stopping()
            if self.lifecycle.stopping:
                await trio.sleep_until(self._idle_since + IDLE_LINGER)
        with trio.CancelScope(shield=True):
            await self._initiate_server_close()

    async def _initiate_server_close(self) -> None:
        # Idle past keep_alive_timeout, or the server stopping. Stopping, a request may be
        # on its way already: it gets an answer, not a closed socket.
        inner = self.protocol.protocol
        if (
            self.lifecycle.stopping
            and isinstance(inner, H11Protocol)
            and isinstance(inner.connection, h11.Connection)
            and inner.connection.our_state is h11.IDLE
            and (inner.connection.trailing_data[0] or _readable(self.stream.socket))
        ):
            await send_json_error(inner, 503, code="shutting_down", message=STOPPING_MESSAGE)
        await super()._initiate_server_close()

    async def _close(self) -> None:
        # Runs in cancelled contexts too (a connection ended by the server's shutdown):
        # shielded, or the socket would be left for the garbage collector to close.
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + CLOSE_DEADLINE
            await super()._close()


async def send_json_error(
    protocol: H11Protocol,
    status_code: int,
    *,
    code: str | None = None,
    message: str | None = None,
) -> None:
    """Hypercorn's own error answer (H11Protocol._send_error_response), as JSON."""
    request_id = request_id_for(None)
    code = code or code_for_status(status_code)
    limit = protocol.config.h11_max_incomplete_size
    message = message or _MESSAGES.get(status_code, "the request was refused").format(limit=limit)
    body = error_json(code, message, request_id)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"x-request-id", request_id.encode()),
        *protocol.config.response_headers("h11"),
    ]
    await protocol._send_h11_event(h11.Response(status_code=status_code, headers=headers))
    await protocol._send_h11_event(h11.Data(data=body))
    await protocol._send_h11_event(h11.EndOfMessage())
    access_log.line("-", "-", status_code, time.perf_counter(), request_id, f" {code}")


# A refused connection is held this long at most, waiting for the client to hang up first.
LINGER_SECONDS = 2.0


def refuse(conn: socket.socket) -> bool:
    """Answer a connection over the cap 503 and end our side of it, synchronously. True when
    the socket must still be closed (see `linger`), False when it was closed here."""
    request_id = request_id_for(None)
    body = error_json(
        "too_many_connections",
        "the server has as many connections open as it may; try again shortly",
        request_id,
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\nretry-after: 1\r\n"
        f"x-request-id: {request_id}\r\n\r\n"
    )
    try:
        conn.setblocking(False)
        conn.send(head.encode() + body)  # a new socket's send buffer takes it whole
        conn.shutdown(socket.SHUT_WR)  # the answer is whole: the client reads it, then EOF
        return True
    except OSError:
        conn.close()  # the client is gone already
        return False


async def linger(conn: socket.socket) -> None:
    """Close a refused connection once the client has closed its side (or after a moment).

    Closed with the client's request still unread, the socket would reset the connection,
    and a client reading the answer late could lose it.
    """
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
    with trio.move_on_after(LINGER_SECONDS):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
    with trio.CancelScope(shield=True):
        await stream.aclose()


def _readable(sock: trio.socket.SocketType) -> bool:
    poller = select.poll()  # not select(): descriptors above 1024 are fine here
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))
