"""An HTTP/1.1 server on a real socket (raw trio) whose answers a test writes byte by byte.

A test decides which bytes go out in which TCP write, and when, and sees when the client
closes the connection. One request per connection unless `keep_alive`; every response says
`Connection: close` otherwise. Start it with `await start_fake_openai(nursery, handler)`;
`openai.py` has handlers that speak OpenAI's Chat Completions, scripted ones among them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

_REASONS = {
    200: "OK",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    529: "Overloaded",  # Anthropic's
}


@attrs.frozen(kw_only=True)
class ReceivedRequest:
    """What the client sent; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Exchange:
    """One connection: the request it carried and the means to answer it byte by byte."""

    def __init__(
        self, stream: trio.SocketStream, request: ReceivedRequest, *, keep_alive: bool = False
    ) -> None:
        self.request = request
        self.client_closed = trio.Event()  # set by `wait_closed_by_client`
        self._stream = stream
        self._chunked = False
        self._keep_alive = keep_alive

    async def send_head(
        self,
        status: int = 200,
        *,
        content_type: str = "text/event-stream",
        chunked: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The status line and headers. Without `chunked`, the body ends when we close."""
        self._chunked = chunked
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Content-Type: {content_type}",
            "Connection: keep-alive" if self._keep_alive else "Connection: close",
        ]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        await self._stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def send(self, data: bytes | str) -> None:
        """One TCP write of body bytes (one HTTP chunk when chunked)."""
        raw = data.encode() if isinstance(data, str) else data
        if self._chunked:
            raw = b"%x\r\n%s\r\n" % (len(raw), raw)
        await self._stream.send_all(raw)

    async def send_event(self, payload: dict[str, Any] | str, *, event: str | None = None) -> None:
        """One SSE event `[event: <event>] data: <payload>` in one write; a dict goes as JSON."""
        data = payload if isinstance(payload, str) else json.dumps(payload)
        name = f"event: {event}\n" if event else ""
        await self.send(f"{name}data: {data}\n\n")

    async def end_body(self) -> None:
        """End a chunked body properly (the last, empty chunk)."""
        await self._stream.send_all(b"0\r\n\r\n")

    async def send_json(
        self, status: int, body: Any, *, headers: dict[str, str] | None = None
    ) -> None:
        """A complete JSON response, as an error reply is."""
        raw = json.dumps(body).encode()
        await self.send_head(
            status,
            content_type="application/json",
            chunked=False,
            headers={"Content-Length": str(len(raw)), **(headers or {})},
        )
        await self._stream.send_all(raw)

    async def close(self) -> None:
        """Close the connection now, whatever was sent (a body cut off mid-way)."""
        await self._stream.aclose()

    async def wait_closed_by_client(self) -> None:
        """Return once the client has closed (or reset) the connection."""
        try:
            while await self._stream.receive_some():
                pass
        except trio.BrokenResourceError:
            pass
        self.client_closed.set()


Handler = Callable[[Exchange], Awaitable[None]]


class FakeOpenAIServer:
    """A running fake server: where to reach it and what it has received."""

    def __init__(self, handler: Handler, *, keep_alive: bool = False) -> None:
        self.handler = handler
        self.port = 0
        self.exchanges: list[Exchange] = []
        self.keep_alive = keep_alive  # serve further requests on a connection, as servers do
        self.connections = 0

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Where OpenAI-compatible APIs live; Anthropic's is the root_url."""
        return f"{self.root_url}/v1"

    @property
    def requests(self) -> list[ReceivedRequest]:
        return [exchange.request for exchange in self.exchanges]

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        async with stream:
            try:
                while True:
                    # A client sends its next request only after this answer: nothing to
                    # carry over from one read to the next.
                    request = await _read_request(stream)
                    if request is None:
                        return
                    exchange = Exchange(stream, request, keep_alive=self.keep_alive)
                    self.exchanges.append(exchange)
                    await self.handler(exchange)
                    if not self.keep_alive:
                        return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the client hung up, as it may


async def start_fake_openai(
    nursery: trio.Nursery, handler: Handler, *, keep_alive: bool = False
) -> FakeOpenAIServer:
    """Serve `handler` on 127.0.0.1 (a free port) until `nursery` is cancelled."""
    server = FakeOpenAIServer(handler, keep_alive=keep_alive)
    serve = functools.partial(trio.serve_tcp, host="127.0.0.1")
    listeners = await nursery.start(serve, server._serve_connection, 0)
    server.port = listeners[0].socket.getsockname()[1]
    return server


async def _read_request(stream: trio.SocketStream) -> ReceivedRequest | None:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some()
        if not data:
            return None
        buffer += data
    head, _, body = buffer.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _version = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        data = await stream.receive_some()
        if not data:
            return None
        body += data
    return ReceivedRequest(method=method, path=path, headers=headers, body=body)
