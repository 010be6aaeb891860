"""The provider's HTTP/1.1 client against real sockets: pooling, dead connections, TLS."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.lowlevel
import trustme

from conversation_service.adapters.llm.http1 import (
    Gathering,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamTransportError,
)

Script = Callable[[trio.abc.Stream, int], Awaitable[None]]  # (stream, connection number)


class Server:
    """A raw trio server: each connection runs `script(stream, n)`; counts connections."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script, self.tls = script, tls
        self.connections = 0
        self.port = 0

    async def start(self, nursery: trio.Nursery) -> str:
        serve = functools.partial(trio.serve_tcp, self._serve, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        self.port = listeners[0].socket.getsockname()[1]
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/v1/chat/completions"

    async def _serve(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        number = self.connections
        wrapped: trio.abc.Stream = stream
        if self.tls is not None:
            wrapped = trio.SSLStream(stream, self.tls, server_side=True)
        try:
            await self.script(wrapped, number)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(wrapped)


async def read_request(stream: trio.abc.Stream) -> bytes | None:
    """One whole request's bytes (head and a Content-Length body), None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = await stream.receive_some(65536)
        if not more:
            return None
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        ).split(b":")[1]
    )
    while len(body) < length:
        body += await stream.receive_some(65536)
    return data


def answer(text: str, *, close: bool = False) -> bytes:
    body = f"data: {text}\n\n".encode()
    connection = b"Connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        + connection
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


async def fetch(client: UpstreamClient, url: str) -> bytes:
    async with client.stream(
        "POST", url, headers={}, json_body={"q": 1}, connect_timeout=2
    ) as response:
        assert response.status_code == 200
        return b"".join([piece async for piece in response.aiter_bytes()])


def keeps_answering(*, close: bool = False) -> Script:
    async def script(stream: trio.abc.Stream, number: int) -> None:
        while await read_request(stream) is not None:
            await stream.send_all(answer(f"connection {number}", close=close))
            if close:
                return

    return script


async def test_a_response_read_to_its_end_leaves_its_connection_for_the_next(nursery):
    server = Server(keeps_answering())
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        for _ in range(3):
            assert await fetch(client, url) == b"data: connection 1\n\n"
        assert client.connections_opened == server.connections == 1


async def test_the_request_carries_host_length_json_and_the_given_headers(nursery):
    seen: list[bytes] = []

    async def script(stream: trio.abc.Stream, _: int) -> None:
        request = await read_request(stream)
        assert request is not None
        seen.append(request)
        await stream.send_all(answer("ok"))

    server = Server(script)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        async with client.stream(
            "POST", url + "?a=b", headers={"X-Api-Key": "k"}, json_body={"é": [1]},
            connect_timeout=2,
        ) as response:  # fmt: skip
            assert [piece async for piece in response.aiter_bytes()] == [b"data: ok\n\n"]
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions?a=b HTTP/1.1"
    headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
    assert headers[b"host"] == f"127.0.0.1:{server.port}".encode()
    assert headers[b"x-api-key"] == b"k"
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(body)).encode()
    assert body == '{"é":[1]}'.encode()


async def test_connection_close_is_honoured(nursery):
    server = Server(keeps_answering(close=True))
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        assert await fetch(client, url) == b"data: connection 1\n\n"
        assert await fetch(client, url) == b"data: connection 2\n\n"
        assert client.connections_opened == 2


async def test_a_connection_the_server_closed_while_idle_does_not_fail_the_next_request(nursery):
    async def answers_then_hangs_up(stream: trio.abc.Stream, number: int) -> None:
        await read_request(stream)
        await stream.send_all(answer(f"connection {number}"))
        # keep-alive said, and then the server lets it go (its idle timeout)

    server = Server(answers_then_hangs_up)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        assert await fetch(client, url) == b"data: connection 1\n\n"
        await trio.sleep(0.1)  # the close has reached us
        assert await fetch(client, url) == b"data: connection 2\n\n"
        assert client.connections_opened == 2


async def test_a_pooled_connection_that_dies_unanswered_is_retried_once_anew(nursery):
    async def script(stream: trio.abc.Stream, number: int) -> None:
        await read_request(stream)
        await stream.send_all(answer(f"connection {number}"))
        if number == 1:  # takes the second request, then goes without a word
            await read_request(stream)

    server = Server(script)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        assert await fetch(client, url) == b"data: connection 1\n\n"
        assert await fetch(client, url) == b"data: connection 2\n\n"
        assert server.connections == 2


async def test_a_new_connection_that_dies_unanswered_is_a_transport_error(nursery):
    async def script(stream: trio.abc.Stream, _: int) -> None:
        await read_request(stream)

    server = Server(script)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        with pytest.raises(UpstreamTransportError, match="closed without answering"):
            await fetch(client, url)
        assert server.connections == 1  # not tried again: that is the caller's to decide


async def test_a_body_left_unread_closes_its_connection(nursery):
    closed = trio.Event()

    async def script(stream: trio.abc.Stream, number: int) -> None:
        await read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n"
        )
        if number == 1:
            assert await stream.receive_some(100) == b""  # the client hung up
            closed.set()

    server = Server(script)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        async with client.stream(
            "POST", url, headers={}, json_body={}, connect_timeout=2
        ) as response:
            async for piece in response.aiter_bytes():
                assert piece == b"data: "
                break
        with trio.fail_after(2):
            await closed.wait()
        async with client.stream("POST", url, headers={}, json_body={}, connect_timeout=2):
            pass
        assert client.connections_opened == 2


async def test_a_broken_body_is_a_transport_error(nursery):
    async def script(stream: trio.abc.Stream, _: int) -> None:
        await read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 100\r\n\r\n"
            b"data: x\n\n"
        )

    server = Server(script)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        with pytest.raises(UpstreamTransportError):
            await fetch(client, url)
        assert client._idle == {} or all(not idle for idle in client._idle.values())


async def test_idle_connections_expire(nursery):
    server = Server(keeps_answering())
    url = await server.start(nursery)
    async with UpstreamClient(keepalive_expiry=0.05) as client:
        await fetch(client, url)
        await trio.sleep(0.1)
        await fetch(client, url)
        assert client.connections_opened == 2


async def test_a_refused_connection_is_a_connect_error(nursery):
    server = Server(keeps_answering())
    url = await server.start(nursery)
    nursery.cancel_scope.cancel()  # the listener goes
    await trio.sleep(0.05)
    async with UpstreamClient() as client:
        with pytest.raises(UpstreamConnectError):
            await fetch(client, url)


async def test_reading_is_called_around_each_wait_on_the_network(nursery):
    async def script(stream: trio.abc.Stream, _: int) -> None:
        await read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n"
        )
        await trio.sleep(0.05)
        await stream.send_all(b"3\r\nghi\r\n0\r\n\r\n")

    server = Server(script)
    url = await server.start(nursery)
    calls: list[bool] = []
    async with UpstreamClient() as client:
        async with client.stream("POST", url, headers={}, json_body={}, connect_timeout=2) as r:
            pieces = [piece async for piece in r.aiter_bytes(calls.append)]
    # Chunks already received come as one piece: the third came 50 ms after the others.
    assert b"".join(pieces) == b"abcdefghi" and pieces[-1] == b"ghi"
    # One wait (True, then False) for the third, maybe one for the first two.
    assert calls == [True, False] * (len(calls) // 2) and 1 <= len(calls) // 2 <= 3


async def test_a_chunked_body_byte_by_byte_with_extensions_and_trailers(nursery):
    body = b"3;name=value\r\nabc\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"

    async def script(stream: trio.abc.Stream, _: int) -> None:
        while await read_request(stream) is not None:
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for byte in body:
                await stream.send_all(bytes([byte]))
                await trio.lowlevel.checkpoint()

    server = Server(script)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        for _ in range(2):  # read to its end, trailers and all: the connection is reused
            assert await fetch(client, url) == b"abc" + b"x" * 16
        assert client.connections_opened == 1


@pytest.mark.parametrize(
    "body",
    [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXY0\r\n\r\n", b"-3\r\nabc\r\n0\r\n\r\n"],
    ids=["not-hex", "no-crlf-after-data", "negative"],
)
async def test_broken_chunked_encoding_is_a_transport_error(nursery, body):
    async def script(stream: trio.abc.Stream, _: int) -> None:
        await read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + body
        )
        await trio.sleep(1)

    server = Server(script)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        with pytest.raises(UpstreamTransportError, match="chunked"):
            await fetch(client, url)


async def test_a_body_up_to_the_close_is_read_and_its_connection_not_reused(nursery):
    async def script(stream: trio.abc.Stream, number: int) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        await stream.send_all(f"data: {number}\n\n".encode())

    server = Server(script)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        assert await fetch(client, url) == b"data: 1\n\n"
        assert await fetch(client, url) == b"data: 2\n\n"
        assert client.connections_opened == 2


async def test_more_than_the_body_makes_the_connection_untrusted(nursery):
    async def script(stream: trio.abc.Stream, number: int) -> None:
        while await read_request(stream) is not None:
            await stream.send_all(answer(f"connection {number}") + b"HTTP/1.1 200 OK\r\n")

    server = Server(script)
    url = await server.start(nursery)
    async with UpstreamClient() as client:
        assert await fetch(client, url) == b"data: connection 1\n\n"
        assert await fetch(client, url) == b"data: connection 2\n\n"


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    return context


async def test_https_checks_the_certificate_and_pools(nursery, authority):
    server = Server(keeps_answering(), tls=server_context(authority))
    url = await server.start(nursery)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    async with UpstreamClient(tls=trusting) as client:
        assert await fetch(client, url) == b"data: connection 1\n\n"
        assert await fetch(client, url) == b"data: connection 1\n\n"
        assert client.connections_opened == 1


async def test_https_to_a_certificate_no_authority_vouches_for_is_refused(nursery, authority):
    server = Server(keeps_answering(), tls=server_context(authority))
    url = await server.start(nursery)
    async with UpstreamClient() as client:  # certifi's authorities: none signed this one
        with pytest.raises(UpstreamConnectError, match="TLS failed.*CERTIFICATE_VERIFY_FAILED"):
            await fetch(client, url)


async def test_https_to_another_name_is_refused(nursery, authority):
    server = Server(keeps_answering(), tls=server_context(authority))
    url = (await server.start(nursery)).replace("localhost", "127.0.0.1")
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    async with UpstreamClient(tls=trusting) as client:
        with pytest.raises(UpstreamConnectError, match="TLS failed"):
            await fetch(client, url)


async def test_a_busy_client_lets_paced_pieces_gather_but_never_the_first(nursery):
    async def paced(stream: trio.abc.Stream, _: int) -> None:
        await read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for n in range(9):
            await trio.sleep(0.01)
            await stream.send_all(b"1\r\n%d\r\n" % n)
        await stream.send_all(b"0\r\n\r\n")

    server = Server(paced)
    url = await server.start(nursery)

    async def pieces(gathering: Gathering) -> list[bytes]:
        async with UpstreamClient(gathering=gathering) as client:
            client.streams = 10  # as if 9 other streams were open (plus this one)
            async with client.stream(
                "POST", url, headers={}, json_body={}, connect_timeout=2
            ) as response:
                return [piece async for piece in response.aiter_bytes()]

    apart = await pieces(Gathering(most=0.0))  # none
    gathered = await pieces(Gathering(free=1, per_stream=0.01, most=0.04))  # waits 40 ms
    assert b"".join(apart) == b"".join(gathered) == b"012345678"
    assert len(gathered) <= 5  # nine chunks 10 ms apart, read every 40 ms or so
    assert gathered[0] == b"0"  # the first is not held back for the next ones
    assert Gathering().wait(16) == 0 and Gathering().wait(17) == 0.001
    assert Gathering().wait(1000) == 0.05


@pytest.mark.parametrize("tls", [False, True])
async def test_reading_hears_of_the_reads_that_wait_and_on_tls_of_every_read(
    nursery, authority, tls
):
    """Bytes already there are no wait on the network: the caller's silence timeout is not
    touched for them. Through TLS a readable socket may hold part of a record, so every
    read after the first is bounded."""
    sent_all = trio.Event()

    async def bursts(stream: trio.abc.Stream, _: int) -> None:
        await read_request(stream)
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        await stream.send_all(head + b"1\r\na\r\n")
        await trio.sleep(0.05)  # the client waits for this one
        await stream.send_all(b"1\r\nb\r\n")
        await trio.sleep(0.05)
        await stream.send_all(b"1\r\nc\r\n" + b"1\r\nd\r\n0\r\n\r\n")
        sent_all.set()
        await trio.sleep(1)

    server = Server(bursts, tls=server_context(authority) if tls else None)
    url = await server.start(nursery)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    calls: list[bool] = []
    pieces: list[bytes] = []
    async with UpstreamClient(tls=trusting) as client:
        async with client.stream("POST", url, headers={}, json_body={}, connect_timeout=2) as r:
            async for piece in r.aiter_bytes(calls.append):
                pieces.append(piece)
                if piece == b"b":
                    await sent_all.wait()  # "c", "d" and the end are all there by now
                    await trio.sleep(0.05)
    assert b"".join(pieces) == b"abcd"
    waits = calls.count(True)
    assert calls == [True, False] * waits  # each wait told before and after
    if tls:
        assert waits == 2  # "b", then "c" and the rest, there already but read bounded
    else:
        assert waits == 1  # only "b" was waited for; the rest was there when read
