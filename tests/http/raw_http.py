"""HTTP/1.1 over a bare socket, for tests that must control the bytes and see the socket."""

from __future__ import annotations

import json

import attrs
import trio


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: test", *headers, "", ""]
    return "\r\n".join(lines).encode()


async def connect(base_url: str) -> trio.SocketStream:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(port))


class Reader:
    """Reads whole answers (with a Content-Length) off one connection."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def answer(self) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            await self._more()
        head, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        self.buffer = bytearray(rest)
        while len(self.buffer) < length:
            await self._more()
        body, self.buffer = bytes(self.buffer[:length]), self.buffer[length:]
        return Answer(status=int(status_line.split()[1]), headers=headers, body=body)

    async def closed(self) -> None:
        """Returns when the server has closed the connection (a reset is an error)."""
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                return
            self.buffer.extend(data)

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError(f"connection closed mid-answer after {bytes(self.buffer)[:200]!r}")
        self.buffer.extend(data)


async def ask(stream: trio.SocketStream, request: bytes) -> Answer:
    await stream.send_all(request)
    return await Reader(stream).answer()
