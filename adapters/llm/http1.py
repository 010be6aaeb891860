"""The HTTP/1.1 client the provider models stream through: h11 on trio streams, pooled.

Why not httpx: a streamed reply is one POST and a body of small chunks, and under load the
service spent half of its event loop in httpx and httpcore's layers around h11 (request
building, the pool's locks, five nested body iterators per chunk); see bench/gateway_bench.py
and the README's Performance section. This client keeps what the service needs of them:

- h11 (httpx's own HTTP/1.1 engine) writes the request and reads the response's head:
  status line, headers, the checks on its framing; the body's framing (chunked, a
  Content-Length, up to the close) is read by `Response`, as one piece for every chunk
  already received;
- TLS with certifi's CA bundle (as httpx), SNI and certificate checks;
- a connection is pooled only when its response was read to its end, per origin, for
  `keepalive_expiry` seconds, at most `max_idle` of them per origin; one the server closed
  while it was idle is noticed before it is used; a request that found its pooled
  connection dead before any byte of an answer is sent once more on a new one;
- no redirects (the target of one has passed no URL check), no proxies, no HTTP/2.

Reads are bounded by the caller's cancel scopes; connecting and writing by `connect_timeout`.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
import certifi
import h11
import orjson
import trio

_USER_AGENT = "conversation-service"
_READ_SIZE = 65_536


class UpstreamConnectError(Exception):
    """No connection could be made (refused, unreachable, TLS failed)."""


class UpstreamConnectTimeout(UpstreamConnectError):
    """No connection within the connect timeout."""


class UpstreamTransportError(Exception):
    """The connection broke, or the server broke HTTP."""


@attrs.frozen
class Origin:
    scheme: str
    host: str
    port: int


def _origin_and_target(url: str) -> tuple[Origin, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamConnectError(f"not an http(s) URL with a host: {parts.scheme}://...")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname, port), target


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Connection:
    def __init__(self, stream: trio.abc.Stream, origin: Origin) -> None:
        self.stream = stream
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self.reused = False

    @property
    def plain(self) -> bool:
        """No TLS: a readable socket is bytes to read at once. (Through TLS it may hold only
        part of a record, and the read then waits for the rest.)"""
        return isinstance(self.stream, trio.SocketStream)

    def readable(self) -> bool:
        """Whether the socket has something to read (or was closed): poll, no wait."""
        stream = self.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        assert isinstance(stream, trio.SocketStream)
        return stream.socket.is_readable()

    async def close(self) -> None:
        await trio.aclose_forcefully(self.stream)


# A chunk-size line: hex digits, then maybe extensions (RFC 9112, 7.1.1).
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
_MAX_LINE = 4096  # bytes of a chunk-size or trailer line


class Response:
    """A response whose body is read as it arrives; see `UpstreamClient.stream`.

    h11 reads the head and says how the body is framed; the body itself (chunked, a
    Content-Length, or up to the close) is read here. h11 makes an event of every chunk,
    which cost a provider stream about a tenth of the event loop; here the data of every
    chunk already received goes out as one piece.
    """

    def __init__(
        self, connection: _Connection, head: h11.Response, pool: UpstreamClient, early: bytes
    ) -> None:
        self._connection: _Connection | None = connection
        self._pool = pool
        self._buffer = bytearray(early)  # what came with the head
        self._pieces = 0  # of the body, given to the reader so far
        self.status_code = head.status_code
        self.headers: dict[str, str] = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in head.headers
        }  # h11 gives names lowercased (and checked the framing ones); the last repeat wins
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        self._keep_alive = head.http_version == b"1.1" and "close" not in tokens

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code < 400 and "location" in self.headers

    async def aiter_bytes(
        self, reading: Callable[[bool], None] | None = None
    ) -> AsyncGenerator[bytes]:
        """The body's bytes as they come; at its end, the connection goes back to the pool.

        `reading(True)` is called before each wait on the network, `reading(False)` after
        it: a caller's read timeout covers those waits and not the time it takes itself.
        """
        connection = self._connection
        if connection is None:
            return
        if self.status_code in (204, 304):
            body: AsyncIterator[bytes] = _nothing()
        elif "chunked" in self.headers.get("transfer-encoding", "").lower():
            body = self._chunked(connection, reading)
        elif "content-length" in self.headers:
            body = self._sized(connection, reading, int(self.headers["content-length"]))
        else:
            self._keep_alive = False
            body = self._until_closed(connection, reading)
        async for piece in body:
            self._pieces += 1
            yield piece
        self._connection = None
        if self._keep_alive and not self._buffer:
            await self._pool.release(connection)
        else:  # said to close, or sent more than its body: not to be trusted again
            await connection.close()

    async def _read(self, connection: _Connection, reading: Callable[[bool], None] | None) -> bytes:
        """The next bytes from the network (b"" at its end), gathered if the pool is busy.

        `reading` hears only of reads that may wait: on a plain connection, bytes that are
        there already are read without it (sparing the caller's two timeout changes).
        """
        if self._pieces:  # never before the first piece: the first text is not held back
            plain = connection.plain
            if plain and connection.readable():
                return await _receive(connection)  # there already: no wait, nothing to gather
            wait = self._pool.gathering.wait(self._pool.streams)
            # A plain socket was found unreadable just above; a TLS one is polled only here.
            if wait and (plain or not connection.readable()):
                await trio.sleep(wait)  # what arrives meanwhile is read, and sent on, as one
                if plain and connection.readable():
                    return await _receive(connection)
        if reading is not None:
            reading(True)
        data = await _receive(connection)
        if reading is not None:
            reading(False)
        return data

    async def _fill(self, connection: _Connection, reading: Callable[[bool], None] | None) -> None:
        data = await self._read(connection, reading)
        if not data:
            raise UpstreamTransportError("the server closed the connection mid-body")
        self._buffer += data

    async def _chunked(
        self, connection: _Connection, reading: Callable[[bool], None] | None
    ) -> AsyncIterator[bytes]:
        buffer, ready = self._buffer, bytearray()
        while True:
            end = buffer.find(b"\r\n")
            while end < 0:
                if len(buffer) > _MAX_LINE:
                    raise UpstreamTransportError("the server sent a chunk-size line too long")
                if ready:
                    yield bytes(ready)
                    ready.clear()
                await self._fill(connection, reading)
                end = buffer.find(b"\r\n")
            size_line = _CHUNK_SIZE.fullmatch(buffer, 0, end)
            if size_line is None:
                raise UpstreamTransportError("the server broke chunked encoding")
            size = int(size_line.group(1), 16)
            del buffer[: end + 2]
            if size == 0:
                break
            while size:
                if not buffer:
                    if ready:
                        yield bytes(ready)
                        ready.clear()
                    await self._fill(connection, reading)
                piece = buffer[:size]
                del buffer[: len(piece)]
                size -= len(piece)
                ready += piece
            while len(buffer) < 2:
                if ready:
                    yield bytes(ready)
                    ready.clear()
                await self._fill(connection, reading)
            if buffer[:2] != b"\r\n":
                raise UpstreamTransportError("the server broke chunked encoding")
            del buffer[:2]
        if ready:
            yield bytes(ready)
        while True:  # trailer lines, ignored, up to an empty one
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > _MAX_LINE:
                    raise UpstreamTransportError("the server sent a trailer line too long")
                await self._fill(connection, reading)
                continue
            del buffer[: end + 2]
            if end == 0:
                return

    async def _sized(
        self, connection: _Connection, reading: Callable[[bool], None] | None, length: int
    ) -> AsyncIterator[bytes]:
        buffer = self._buffer
        while True:
            piece = bytes(buffer[:length])
            del buffer[: len(piece)]
            length -= len(piece)
            if piece:
                yield piece
            if not length:
                return
            await self._fill(connection, reading)

    async def _until_closed(
        self, connection: _Connection, reading: Callable[[bool], None] | None
    ) -> AsyncIterator[bytes]:
        buffer = self._buffer
        while True:
            if buffer:
                yield bytes(buffer)
                buffer.clear()
            data = await self._read(connection, reading)
            if not data:
                return
            buffer += data

    async def aclose(self) -> None:
        """Leave the response: a connection whose body was not read to its end is closed."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing


async def _receive(connection: _Connection) -> bytes:
    try:
        return bytes(await connection.stream.receive_some(_READ_SIZE))  # bytes: no copy
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
        raise UpstreamTransportError(f"the connection broke: {type(e).__name__}") from e


@attrs.frozen(kw_only=True)
class Gathering:
    """How long a busy process lets a stream's next pieces gather before reading them.

    Every read of a paced stream (a chunk every 20 ms, say) wakes a task and costs system
    calls, and its text is then framed and sent to the client in a write of its own: with
    hundreds of streams open, those per-read costs are what fills the process. Once a
    stream has given its first piece, and its upstream has sent nothing new yet, its next
    read waits `per_stream` seconds for every stream open beyond `free`, up to `most`:
    whatever arrived meanwhile is read, and sent on, as one. With 66 streams open or more
    that is 50 ms, and chunks 20 ms apart come two or three at a time (in the gateway
    bench, 100 such streams took 40% less CPU). Nothing waits with `free` streams or fewer,
    and the first text of a reply never waits.
    """

    free: int = 16
    per_stream: float = 0.001
    most: float = 0.05

    def wait(self, streams: int) -> float:
        return (
            min(self.most, (streams - self.free) * self.per_stream) if streams > self.free else 0.0
        )


class UpstreamClient:
    """Connections to providers, pooled per origin. Close it with `aclose` (or `async with`)."""

    def __init__(
        self,
        *,
        max_idle: int = 20,
        keepalive_expiry: float = 5.0,
        tls: ssl.SSLContext | None = None,
        gathering: Gathering = Gathering(),  # noqa: B008 - frozen
    ) -> None:
        self.max_idle = max_idle  # per origin
        self.keepalive_expiry = keepalive_expiry  # seconds an idle connection is kept
        self.gathering = gathering
        self.streams = 0  # responses open now
        self._idle: dict[Origin, list[_Connection]] = {}
        self._tls = tls  # certifi's authorities unless given
        self.connections_opened = 0  # for tests and benchmarks: how often the pool missed
        self.closed = False

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, {}
        with trio.CancelScope(shield=True):
            for connections in idle.values():
                for connection in connections:
                    await connection.close()

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json_body: Any,
        connect_timeout: float,
    ) -> AsyncIterator[Response]:
        """Send a request with a JSON body; the response once its head has arrived.

        Raises UpstreamConnectError (or its Timeout) when no connection could be made,
        UpstreamTransportError when the connection broke before the head was whole.
        """
        if self.closed:
            raise RuntimeError("the upstream client is closed")
        origin, target = _origin_and_target(url)
        body = orjson.dumps(json_body)
        request = _request(method, origin, target, headers, len(body))
        while True:
            connection = await self._acquire(origin, connect_timeout)
            try:
                head, early = await self._exchange(connection, request, body, connect_timeout)
            except UpstreamTransportError:
                await connection.close()
                if connection.reused:  # the server let it go as we picked it: once more, anew
                    continue
                raise
            except BaseException:
                await connection.close()
                raise
            break
        response = Response(connection, head, self, early)
        self.streams += 1
        try:
            yield response
        finally:
            self.streams -= 1
            await response.aclose()

    async def _acquire(self, origin: Origin, connect_timeout: float) -> _Connection:
        idle = self._idle.get(origin)
        now = trio.current_time()
        while idle:
            connection = idle.pop()
            # Readable while idle: the server closed it (or wrote out of turn).
            if now - connection.idle_since < self.keepalive_expiry and not connection.readable():
                connection.reused = True
                return connection
            await connection.close()
        connection = await self._connect(origin, connect_timeout)
        if self.closed:  # closed while connecting: the pool would keep it open
            await connection.close()
            raise RuntimeError("the upstream client is closed")
        return connection

    async def _connect(self, origin: Origin, connect_timeout: float) -> _Connection:
        self.connections_opened += 1
        with trio.move_on_after(connect_timeout):
            try:
                stream: trio.abc.Stream = await trio.open_tcp_stream(origin.host, origin.port)
            except OSError as e:
                raise UpstreamConnectError(f"{type(e).__name__}: {e.strerror or e}") from e
            if origin.scheme == "https":
                if self._tls is None:
                    self._tls = _tls_context()
                tls = trio.SSLStream(stream, self._tls, server_hostname=origin.host)
                try:
                    await tls.do_handshake()
                except (trio.BrokenResourceError, ssl.SSLError, OSError) as e:
                    await trio.aclose_forcefully(tls)
                    cause = e.__cause__ if isinstance(e, trio.BrokenResourceError) else e
                    raise UpstreamConnectError(f"TLS failed: {cause or type(e).__name__}") from e
                except BaseException:
                    await trio.aclose_forcefully(tls)
                    raise
                stream = tls
            return _Connection(stream, origin)
        raise UpstreamConnectTimeout(f"no connection within {connect_timeout:g}s")

    async def _exchange(
        self, connection: _Connection, request: h11.Request, body: bytes, connect_timeout: float
    ) -> tuple[h11.Response, bytes]:
        """Send the request; the response's head, and the bytes after it read with it."""
        parser = connection.h11
        wire = b"".join(
            (
                parser.send(request) or b"",
                parser.send(h11.Data(data=body)) or b"",
                parser.send(h11.EndOfMessage()) or b"",
            )
        )
        with trio.move_on_after(connect_timeout) as writing:
            try:
                await connection.stream.send_all(wire)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
                raise UpstreamTransportError(f"the connection broke: {type(e).__name__}") from e
        if writing.cancelled_caught:
            raise UpstreamTransportError(f"the request was not sent within {connect_timeout:g}s")
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as e:
                raise UpstreamTransportError(f"the server broke HTTP/1.1: {e}") from e
            if event is h11.NEED_DATA:
                data = await _receive(connection)
                if not data and parser.their_state is h11.SEND_RESPONSE:
                    raise UpstreamTransportError("the server closed without answering")
                parser.receive_data(data)
            elif type(event) is h11.Response:
                connection.reused = False  # an answer came: no retry from here on
                return event, parser.trailing_data[0]
            elif type(event) is h11.ConnectionClosed:
                raise UpstreamTransportError("the server closed without answering")
            # an InformationalResponse (1xx) is followed by the real one

    async def release(self, connection: _Connection) -> None:
        """A response read to its end, on a connection HTTP lets be reused: pooled."""
        idle = self._idle.setdefault(connection.origin, [])
        if len(idle) < self.max_idle and not self.closed:
            connection.h11 = h11.Connection(h11.CLIENT)  # its next request and response
            connection.idle_since = trio.current_time()
            idle.append(connection)
            return
        await connection.close()


def _request(
    method: str, origin: Origin, target: str, headers: Mapping[str, str], length: int
) -> h11.Request:
    default_port = 443 if origin.scheme == "https" else 80
    host = origin.host if ":" not in origin.host else f"[{origin.host}]"
    if origin.port != default_port:
        host = f"{host}:{origin.port}"
    given = {name.lower(): value for name, value in headers.items()}
    given.setdefault("content-type", "application/json")
    given.setdefault("accept", "text/event-stream")
    given.setdefault("user-agent", _USER_AGENT)
    given["host"] = host
    given["content-length"] = str(length)
    return h11.Request(method=method, target=target, headers=list(given.items()))
