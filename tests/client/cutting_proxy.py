"""A TCP proxy in front of the real server whose next connections can be cut mid-answer, as a
flaky network does. Written on anyio, so the same proxy serves trio tests, asyncio tests and
(through a blocking portal) the sync client's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import anyio.abc
import attrs

_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


@attrs.frozen
class Cut:
    """Cut a connection just after the `times`-th `marker` in its answer; b"": before the
    answer's first byte (the server has handled the request; the client never hears of it)."""

    marker: bytes
    times: int = 1

    def point(self, answer: bytes) -> int | None:
        """Where in `answer` to cut, once it holds enough of it."""
        if not self.marker:
            return 0
        at = -1
        for _ in range(self.times):
            at = answer.find(self.marker, at + 1)
            if at < 0:
                return None
        return at + len(self.marker)


@attrs.define
class CuttingProxy:
    target: tuple[str, int]
    base_url: str = ""
    connections: int = 0
    cuts: int = 0
    _plans: list[Cut] = attrs.field(factory=list)

    def cut_next(self, marker: bytes, times: int = 1) -> None:
        """Cut the next connection opened through the proxy (see Cut)."""
        self._plans.append(Cut(marker, times))

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        self.connections += 1
        plan = self._plans.pop(0) if self._plans else None
        async with client, await anyio.connect_tcp(*self.target) as upstream:
            async with anyio.create_task_group() as connection:
                connection.start_soon(self._requests, client, upstream, connection.cancel_scope)
                await self._answers(upstream, client, plan)
                connection.cancel_scope.cancel()

    async def _requests(
        self,
        client: anyio.abc.SocketStream,
        upstream: anyio.abc.SocketStream,
        scope: anyio.CancelScope,
    ) -> None:
        try:
            while True:
                await upstream.send(await client.receive())
        except _BROKEN:
            scope.cancel()

    async def _answers(
        self, upstream: anyio.abc.SocketStream, client: anyio.abc.SocketStream, plan: Cut | None
    ) -> None:
        answer = b""
        try:
            while True:
                data = await upstream.receive()
                if plan is not None:
                    point = plan.point(answer + data)
                    if point is not None:
                        if point > len(answer):
                            await client.send(data[: point - len(answer)])
                        self.cuts += 1
                        return  # both sides are closed: the client sees the answer cut short
                    answer += data
                await client.send(data)
        except _BROKEN:
            return


@asynccontextmanager
async def open_cutting_proxy(base_url: str) -> AsyncIterator[CuttingProxy]:
    """A proxy to the server at `base_url`, listening on a free loopback port."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None and parts.port is not None
    proxy = CuttingProxy(target=(parts.hostname, parts.port))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    proxy.base_url = f"http://127.0.0.1:{port}"
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, proxy.handle)
        try:
            yield proxy
        finally:
            tasks.cancel_scope.cancel()
