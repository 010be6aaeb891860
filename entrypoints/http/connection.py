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
- Released as soon as the client has gone: Hypercorn keeps a connection (and its socket)
  until its idle timer ends, up to keep_alive_timeout after the client closed it.
"""

from __future__ import annotations

import logging
import time
from functools import partial

import h11
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, LifespanState

from conversation_service.entrypoints.http import access_log
from conversation_service.entrypoints.http.errors import code_for_status, error_json, request_id_for

log = logging.getLogger("conversation_service.server")

CLOSE_DEADLINE = 2.0  # seconds a socket's own close (FIN, then close) may take

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
        send_timeout: float,
    ) -> None:
        super().__init__(app, config, context, state, stream)  # type: ignore[arg-type]
        self.send_timeout = send_timeout
        self._read_all = False  # the client closed its side (or the socket is closed)

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            await super().protocol_send(event)
            return
        async with self.send_lock:
            try:
                # Still shielded (a half-written chunk would corrupt the stream), but
                # no longer unbounded.
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + self.send_timeout
                    await self.stream.send_all(event.data)
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
        # Hypercorn's, but the client may have gone already.
        if not self._read_all:
            with trio.move_on_after(self.config.keep_alive_timeout):
                await self.context.terminated.wait()
        with trio.CancelScope(shield=True):
            await self._initiate_server_close()

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
