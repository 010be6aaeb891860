"""The HTTP/1.1 client the provider models stream through: h11 on trio streams, pooled.

Why not httpx: a streamed reply is one POST and a body of small chunks, and under load the
service spent half of its event loop in httpx and httpcore's layers around h11 (request
building, the pool's locks, five nested body iterators per chunk); see bench/gateway_bench.py
and the README's Performance section. This client keeps what the service needs of them:

- h11 (httpx's own HTTP/1.1 engine) reads and writes the protocol: framing, chunked bodies,
  keep-alive rules;
- TLS with certifi's CA bundle (as httpx), SNI and certificate checks;
- a connection is pooled only when its response was read to its end, per origin, for
  `keepalive_expiry` seconds, at most `max_idle` of them per origin; one the server closed
  while it was idle is noticed before it is used; a request that found its pooled
  connection dead before any byte of an answer is sent once more on a new one;
- no redirects (the target of one has passed no URL check), no proxies, no HTTP/2.

Reads are bounded by the caller's cancel scopes; connecting and writing by `connect_timeout`.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
import h11
import trio

_USER_AGENT = b"conversation-service"
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
    try:
        import certifi  # httpx's CA bundle; installed with it

        context = ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Connection:
    def __init__(self, stream: trio.abc.Stream, origin: Origin) -> None:
        self.stream = stream
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self.reused = False

    def looks_alive(self) -> bool:
        """False when the server closed (or wrote to) this idle connection."""
        stream = self.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        assert isinstance(stream, trio.SocketStream)
        return not stream.socket.is_readable()

    async def close(self) -> None:
        await trio.aclose_forcefully(self.stream)


class Response:
    """A response whose body is read as it arrives; see `UpstreamClient.stream`."""

    def __init__(self, connection: _Connection, head: h11.Response, pool: UpstreamClient) -> None:
        self._connection: _Connection | None = connection
        self._pool = pool
        self.status_code = head.status_code
        self.headers: dict[str, str] = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in head.headers
        }  # h11 gives names lowercased; a repeated header keeps its last value

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code < 400 and "location" in self.headers

    async def aiter_bytes(
        self, reading: Callable[[bool], None] | None = None
    ) -> AsyncIterator[bytes]:
        """The body's bytes as they come; at its end, the connection goes back to the pool.

        `reading(True)` is called before each wait on the network, `reading(False)` after
        it: a caller's read timeout covers those waits and not the time it takes itself.
        """
        connection = self._connection
        if connection is None:
            return
        parser = connection.h11
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as e:
                raise UpstreamTransportError(f"the server broke HTTP/1.1: {e}") from e
            if event is h11.NEED_DATA:
                if reading is None:
                    parser.receive_data(await _receive(connection))
                    continue
                reading(True)
                data = await _receive(connection)
                reading(False)
                parser.receive_data(data)
            elif type(event) is h11.Data:
                yield bytes(event.data)
            elif type(event) is h11.EndOfMessage or type(event) is h11.ConnectionClosed:
                self._connection = None
                await self._pool.release(connection)
                return

    async def aclose(self) -> None:
        """Leave the response: a connection whose body was not read to its end is closed."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


async def _receive(connection: _Connection) -> bytes:
    try:
        return bytes(await connection.stream.receive_some(_READ_SIZE))  # bytes: no copy
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
        raise UpstreamTransportError(f"the connection broke: {type(e).__name__}") from e


class UpstreamClient:
    """Connections to providers, pooled per origin. Close it with `aclose` (or `async with`)."""

    def __init__(
        self,
        *,
        max_idle: int = 20,
        keepalive_expiry: float = 5.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.max_idle = max_idle  # per origin
        self.keepalive_expiry = keepalive_expiry  # seconds an idle connection is kept
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
        body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
        request = _request(method, origin, target, headers, len(body))
        while True:
            connection = await self._acquire(origin, connect_timeout)
            try:
                head = await self._exchange(connection, request, body, connect_timeout)
            except UpstreamTransportError:
                await connection.close()
                if connection.reused:  # the server let it go as we picked it: once more, anew
                    continue
                raise
            except BaseException:
                await connection.close()
                raise
            break
        response = Response(connection, head, self)
        try:
            yield response
        finally:
            await response.aclose()

    async def _acquire(self, origin: Origin, connect_timeout: float) -> _Connection:
        idle = self._idle.get(origin)
        now = trio.current_time()
        while idle:
            connection = idle.pop()
            if now - connection.idle_since < self.keepalive_expiry and connection.looks_alive():
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
    ) -> h11.Response:
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
                return event
            elif type(event) is h11.ConnectionClosed:
                raise UpstreamTransportError("the server closed without answering")
            # an InformationalResponse (1xx) is followed by the real one

    async def release(self, connection: _Connection) -> None:
        """A response read to its end: its connection is pooled if HTTP lets it be reused."""
        parser = connection.h11
        if parser.our_state is h11.DONE and parser.their_state is h11.DONE:
            parser.start_next_cycle()
            idle = self._idle.setdefault(connection.origin, [])
            if len(idle) < self.max_idle and not self.closed:
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
    given.setdefault("user-agent", _USER_AGENT.decode())
    given["host"] = host
    given["content-length"] = str(length)
    return h11.Request(method=method, target=target, headers=list(given.items()))
