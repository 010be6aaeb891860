"""A fast OpenAI-compatible Chat Completions upstream for load tests and benchmarks: raw trio
sockets.

POST /v1/chat/completions answers with a `text/event-stream` (HTTP/1.1, chunked, keep-alive):
a role chunk, `chunks` content chunks (`chat.completion.chunk`, one `data:` line each, every
event its own HTTP chunk), a finish chunk, a usage chunk and `data: [DONE]`. What to send is
read from a directive in the last user message, `[mock chunks=50 delay_ms=20 chars=4]` (the
last one in the body: earlier messages may hold older directives); without one, 50 chunks, no
delay. Chunk i's text is `piece(i, chars)`, so a client can check a reply arrived whole.
GET /stats counts the requests and connections it has had (how well clients pool).

With no delay the whole reply goes out in one write; with one, the first content chunk goes
with the head and chunk i at `i * delay_ms` after it (a fixed schedule: a 200-chunk reply 20
ms apart takes 4 s, as long as the client reads), all written by one pacing task.
The request body is not parsed as JSON: finding the directive is one `rfind`, so that this
process is never what limits a benchmark.

    python -m conversation_service.testing.upstream.load --port 0  # prints "mock upstream on <url>"
"""

from __future__ import annotations

import argparse
import functools
import heapq
import itertools
import json
import math
import os
import re

import trio

DIRECTIVE = re.compile(rb"\[mock chunks=(\d+) delay_ms=(\d+)(?: chars=(\d+))?\]")
DEFAULT_CHUNKS = 50
_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_CHUNK = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000}


def directive(chunks: int, delay_ms: int = 0, chars: int = 4) -> str:
    """The text that asks the mock for a reply of `chunks` chunks of `chars` characters."""
    return f"[mock chunks={chunks} delay_ms={delay_ms} chars={chars}]"


def piece(index: int, chars: int) -> str:
    """The text of content chunk `index`: `chars` characters, distinct from its neighbours."""
    return (f"w{index} " * chars)[:chars]


def reply_text(chunks: int, chars: int = 4) -> str:
    """The whole reply a client must see for a directive."""
    return "".join(piece(i, chars) for i in range(chunks))


def _event(choices: list[dict[str, object]], **extra: object) -> bytes:
    data = json.dumps(
        {**_CHUNK, "model": "mock", "choices": choices, **extra}, separators=(",", ":")
    )
    raw = f"data: {data}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(raw), raw)  # one event, one HTTP chunk


def _delta(delta: dict[str, str], finish: str | None = None) -> bytes:
    return _event([{"index": 0, "delta": delta, "finish_reason": finish}])


@functools.lru_cache(maxsize=64)
def _content(chunks: int, chars: int) -> tuple[bytes, ...]:
    """The framed events of a reply: role chunk + first content chunk, then one per chunk."""
    events = [_delta({"content": piece(i, chars)}) for i in range(chunks)]
    if events:
        events[0] = _delta({"role": "assistant", "content": ""}) + events[0]
    return tuple(events)


@functools.lru_cache(maxsize=64)
def _whole(chunks: int, chars: int) -> bytes:
    return b"".join(_content(chunks, chars))


def _tail(prompt_tokens: int, chunks: int) -> bytes:
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": chunks,
        "total_tokens": prompt_tokens + chunks,
    }
    done = b"data: [DONE]\n\n"
    return (
        _delta({}, "stop")
        + _event([], usage=usage)
        + b"%x\r\n%s\r\n" % (len(done), done)
        + b"0\r\n\r\n"
    )


def _error(status: bytes, message: str) -> bytes:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
    head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % (status, len(body)) + body


class _Paced:
    """A reply whose chunks go out on a schedule: the events left and where it stands."""

    def __init__(self, fd: int, events: tuple[bytes, ...], tail: bytes, delay: float) -> None:
        self.fd, self.events, self.tail, self.delay = fd, events, tail, delay
        self.index = 1  # events[0] went out with the head
        self.started = trio.current_time()
        self.pending = b""  # bytes the socket did not take yet
        self.done = trio.Event()

    def due(self) -> float:
        return self.started + self.index * self.delay


class Pacer:
    """Writes the delayed chunks of every open reply from one task, by a heap of due times.

    A task per reply sleeping between chunks costs ~40 us of CPU a chunk in trio; this costs
    a few (a non-blocking os.write on the socket, whose connection task meanwhile only waits
    for `done`), so that 1,000 replies at 50 chunks/s each do not make the mock the limit.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Paced]] = []
        self._count = itertools.count()
        self._wake = trio.Event()

    def add(self, paced: _Paced) -> None:
        heapq.heappush(self._heap, (paced.due(), next(self._count), paced))
        self._wake.set()

    async def run(self) -> None:
        heap = self._heap
        while True:
            # Until the next due time (at least 1 ms on), or a new reply, whichever is first.
            until = max(heap[0][0], trio.current_time() + 0.001) if heap else math.inf
            with trio.move_on_at(until):
                await self._wake.wait()
            self._wake = trio.Event()
            now = trio.current_time() + 0.0005  # what falls due within half a ms goes now
            while heap and heap[0][0] <= now:
                _, _, paced = heapq.heappop(heap)
                data = paced.pending
                while paced.index < len(paced.events) and paced.due() <= now:
                    data += paced.events[paced.index]  # more than one when we fell behind
                    paced.index += 1
                if paced.index == len(paced.events):
                    data += paced.tail
                    paced.index += 1
                try:
                    written = os.write(paced.fd, data) if data else 0
                except BlockingIOError:
                    written = 0
                except OSError:  # the client went away
                    paced.done.set()
                    continue
                paced.pending = data[written:]
                if paced.index > len(paced.events) and not paced.pending:
                    paced.done.set()
                else:
                    later = paced.due() if paced.index < len(paced.events) else now + 0.001
                    heapq.heappush(heap, (later, next(self._count), paced))


class MockUpstream:
    """Counts the replies it served and the connections they came on; `serve` handles one
    keep-alive connection."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.requests = 0
        self.connections = 0

    async def serve(self, stream: trio.SocketStream) -> None:
        buffer, counted = b"", False
        try:
            async with stream:
                while True:
                    while (end := buffer.find(b"\r\n\r\n")) < 0:
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        buffer += data
                    head = buffer[:end].lower()
                    found = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
                    length = int(found.group(1)) if found else 0
                    while len(buffer) < end + 4 + length:
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        buffer += data
                    body = buffer[end + 4 : end + 4 + length]
                    buffer = buffer[end + 4 + length :]
                    if head.startswith(b"get /stats "):
                        await stream.send_all(self._stats())
                    elif not head.startswith(b"post /v1/chat/completions "):
                        await stream.send_all(_error(b"404 Not Found", "no such route"))
                    else:
                        self.requests += 1
                        self.connections += not counted  # connections that carried a reply
                        counted = True
                        await self._reply(stream, body)
                    if b"\r\nconnection: close" in head:
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away, as clients may

    def _stats(self) -> bytes:
        body = json.dumps({"requests": self.requests, "connections": self.connections}).encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        return head % len(body) + body

    async def _reply(self, stream: trio.SocketStream, body: bytes) -> None:
        at = body.rfind(b"[mock ")
        found = DIRECTIVE.match(body, at) if at >= 0 else None
        chunks, delay_ms, chars = DEFAULT_CHUNKS, 0, 4
        if found:
            chunks, delay_ms = int(found.group(1)), int(found.group(2))
            chars = int(found.group(3) or 4)
        tail = _tail(len(body) // 4, chunks)
        if delay_ms == 0 or chunks < 2:
            await stream.send_all(_HEAD + _whole(chunks, chars) + tail)
            return
        events = _content(chunks, chars)
        await stream.send_all(_HEAD + events[0])
        paced = _Paced(stream.socket.fileno(), events, tail, delay_ms / 1000)
        self.pacer.add(paced)
        await paced.done.wait()


async def start_mock_upstream(nursery: trio.Nursery, port: int = 0) -> tuple[MockUpstream, int]:
    """Serve on 127.0.0.1:`port` (0: a free one) until `nursery` is cancelled."""
    upstream = MockUpstream(Pacer())
    nursery.start_soon(upstream.pacer.run)
    serve = functools.partial(trio.serve_tcp, host="127.0.0.1", backlog=4096)
    listeners = await nursery.start(serve, upstream.serve, port)
    return upstream, listeners[0].socket.getsockname()[1]


async def main(port: int) -> None:
    async with trio.open_nursery() as nursery:
        _, bound = await start_mock_upstream(nursery, port)
        print(f"mock upstream on http://127.0.0.1:{bound}/v1", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    try:
        trio.run(main, parser.parse_args().port)
    except KeyboardInterrupt:
        pass
