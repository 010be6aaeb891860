"""One client connection: Hypercorn's trio TCPServer with the bounds we need.

- A write timeout. Hypercorn writes every chunk with `send_all` inside a *shielded* cancel
  scope with no deadline, so a client that never reads (a stalled tab, a slow-loris) blocks
  its connection task for ever: its stream never ends, its org's stream slot is never freed,
  and the server cannot shut down. nginx's `send_timeout` answers the same problem; here the
  shielded write gets a deadline and the connection is closed when it passes. Readers
  dropped this way can re-attach with Last-Event-ID.
- Released as soon as the client has gone: Hypercorn keeps a connection (and its socket)
  until its idle timer ends, up to keep_alive_timeout after the client closed it.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, LifespanState

log = logging.getLogger("conversation_service.server")

CLOSE_DEADLINE = 2.0  # seconds a socket's own close (FIN, then close) may take


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
