"""A write timeout for Hypercorn's trio worker: a client that stops reading is dropped.

Hypercorn writes every chunk with `send_all` inside a *shielded* cancel scope, with no
deadline, so a client that never reads (a stalled tab, a slow-loris) blocks its connection
task for ever: its stream never ends, its org's stream slot is never freed, and the server
cannot shut down. nginx's `send_timeout` answers the same problem; Hypercorn has no such
setting, so this subclass gives the shielded write a deadline and closes the connection
when it passes. Readers dropped this way can re-attach with Last-Event-ID.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.events import Closed, RawData
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio.tcp_server import TCPServer

log = logging.getLogger("conversation_service.server")


def install_send_timeout(seconds: float) -> None:
    """Make Hypercorn's trio worker drop connections whose writes stall for `seconds`."""

    class SendTimeoutTCPServer(TCPServer):
        async def protocol_send(self, event: object) -> None:
            if not isinstance(event, RawData):
                await super().protocol_send(event)  # type: ignore[arg-type]
                return
            async with self.send_lock:
                try:
                    # Still shielded (a half-written chunk would corrupt the stream), but
                    # no longer unbounded.
                    with trio.CancelScope(shield=True) as scope:
                        scope.deadline = trio.current_time() + seconds
                        await self.stream.send_all(event.data)
                    if scope.cancelled_caught:
                        log.info("dropping a client that stopped reading for %s s", seconds)
                        await self.stream.aclose()
                        raise trio.ClosedResourceError("client stopped reading")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.protocol.handle(Closed())

    hypercorn_run.TCPServer = SendTimeoutTCPServer  # type: ignore[misc]
