"""The load generator of bench/gateway_bench.py, run as its own process.

trio and raw sockets: HTTP/1.1 with keep-alive and chunked bodies, and Server-Sent Events
split on blank lines. httpx + httpx-sse take ~14 us of CPU an event against the mock (about
70,000 events/s from one process), which would cap the direct figures; this reader takes
about 1 us (the bench prints this process's CPU for every phase, flagging any phase where it
was the limit). It talks to either target the same way: `direct` is the mock
upstream's POST /v1/chat/completions, `service` is the service's POST
/api/conversation/stream_chat.

Protocol: the first line on stdin is the configuration (JSON: ports, org, token, model,
pids to watch); then one JSON command per line (`op`: sessions, history, ttfc, throughput,
open, verify); each gets one JSON result line on stdout. Figures are measured here, CPU and
memory of the watched processes are read from /proc at the edges of each measured window.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import trio

from conversation_service.testing.upstream.load import directive, reply_text

HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")
FILLER = "Could you go over that part again, with an example and the trade-offs involved? " * 4
RESERVE = 1024  # tokens the service keeps for a reply: the model's max_output_tokens (default)


class Failure(Exception):
    """A stream that did not complete as it should; its message is the reason, for counting."""


# -- HTTP/1.1 over a raw socket ---------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its body, piece by piece."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stream: trio.SocketStream | None = None
        self.buffer = b""
        self.chunked = False
        self.left = 0  # body bytes still to come, without chunking
        self.done = True
        self.close_after = False

    async def aclose(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
            self.stream = None

    async def _more(self) -> None:
        assert self.stream is not None
        data = await self.stream.receive_some(262144)
        if not data:
            raise Failure("connection closed early")
        self.buffer += data

    async def request(self, request: bytes) -> int:
        """Send one whole request (opening the connection if need be); the answer's status."""
        if self.stream is None:
            self.stream = await trio.open_tcp_stream(HOST, self.port)
            self.buffer = b""
        await self.stream.send_all(request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._more()
        raw = self.buffer[:end].lower()
        self.buffer = self.buffer[end + 4 :]
        self.chunked = b"\r\ntransfer-encoding: chunked" in raw
        found = re.search(rb"\r\ncontent-length: *(\d+)", raw)
        self.left = int(found.group(1)) if found else 0
        self.done = not self.chunked and self.left == 0
        self.close_after = b"\r\nconnection: close" in raw
        return int(raw[9:12])

    async def part(self) -> bytes | None:
        """The next body bytes there are (de-chunked), None at the body's end."""
        while not self.done:
            if not self.chunked:
                if not self.buffer:
                    await self._more()
                data, self.buffer = self.buffer[: self.left], self.buffer[self.left :]
                self.left -= len(data)
                self.done = self.left == 0
                return data
            parts, buffer, at = [], self.buffer, 0
            while True:
                line_end = buffer.find(b"\r\n", at)
                if line_end < 0:
                    break
                size = int(buffer[at:line_end].split(b";")[0], 16)
                stop = line_end + 2 + size
                if len(buffer) < stop + 2:
                    break
                if size == 0:  # the last chunk (no trailers from our servers)
                    self.done = True
                    at = stop + 2
                    break
                parts.append(buffer[line_end + 2 : stop])
                at = stop + 2
            self.buffer = buffer[at:]
            if parts:
                return b"".join(parts)
            if not self.done:
                await self._more()
        if self.close_after:
            await self.aclose()
        return None

    async def body(self) -> bytes:
        parts = []
        while (data := await self.part()) is not None:
            parts.append(data)
        return b"".join(parts)


class Target:
    """How to ask one of the two targets for a streamed reply, and to read its events."""

    def __init__(self, config: dict[str, Any], kind: str) -> None:
        self.kind = kind
        self.port = config["upstream_port"] if kind == "direct" else config["service_port"]
        self.org, self.token = config["org"], config["token"]
        self.model_id = config["model_id"]
        self.context_window = config["context_window"]

    def head(self, method: str, path: str, length: int, extra: str = "") -> bytes:
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n"
        ).encode()

    def stream_request(self, session: str | None, message: str, history: int) -> bytes:
        """The request for one streamed reply to `message` (`session`: the service's)."""
        if self.kind == "service":
            body = json.dumps({"chat_session_id": session, "message": message}).encode()
            path = f"/api/conversation/stream_chat?org_id={self.org}"
        else:
            earlier = synthetic_history(history, message, self.context_window)
            messages = [*earlier, {"role": "user", "content": message}]
            body = json.dumps(
                {
                    "model": "mock",
                    "messages": messages,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                }
            ).encode()
            path = "/v1/chat/completions"
        return self.head("POST", path, len(body), "Accept: text/event-stream\r\n") + body

    async def call(self, conn: Connection, path: str, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload).encode()
        status = await conn.request(
            self.head("POST", f"{path}?org_id={self.org}", len(body)) + body
        )
        answer = await conn.body()
        if status not in (200, 201):
            raise Failure(f"{path}: {status} {answer[:300]!r}")
        return json.loads(answer)


def synthetic_history(count: int, message: str, window: int) -> list[dict[str, str]]:
    """What the service would send the upstream for `count` earlier messages of our sizes:
    as many of the newest as fit its estimate (4 characters a token, 4 tokens a message)."""
    budget = window - RESERVE - ((len(message) + 3) // 4 + 4)
    old = history_message(0)
    fits = min(count, budget // ((len(old) + 3) // 4 + 4))
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": history_message(i)}
        for i in range(fits)
    ]


def history_message(index: int) -> str:
    """An earlier message: ~210 characters, asking the mock for a one-chunk 200-char reply."""
    return f"Earlier question {index}: {FILLER}"[:170] + " " + directive(1, 0, 200)


def user_message(chunks: int, delay_ms: int = 0) -> str:
    return f"New question: {FILLER}"[:170] + " " + directive(chunks, delay_ms)


# -- measuring ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, all threads


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(found.group(1)) / 1024 if found else float("nan")


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all CPUs), from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


class Window:
    """CPU of the watched processes (and of this one) over a measured window, and of every
    other process on the machine (`others`: the machine's busy time less ours)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {**pids, "generator": os.getpid()}
        self.began = time.perf_counter()
        self.cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.machine = machine_busy_seconds()

    def close(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.began
        used = {name: cpu_seconds(pid) - self.cpu[name] for name, pid in self.pids.items()}
        busy = machine_busy_seconds() - self.machine
        used["others"] = max(0.0, busy - sum(used.values()))
        return {"wall": wall, "cpu": used, "cpu_pct": {n: 100 * s / wall for n, s in used.items()}}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {"n": len(ordered), "p50": at(0.5), "p95": at(0.95), "max": ordered[-1]}


# -- one streamed reply -------------------------------------------------------------------

CONTENT = {"direct": b'"delta":{"content":"', "service": b"\nevent: content\n"}


async def stream_reply(
    conn: Connection,
    target: Target,
    request: bytes,
    expect: int,
    sent: float,
    tally: Any = None,
) -> tuple[float, dict[str, Any] | None]:
    """Send `request` and read its reply to the end: (seconds from `sent` to the first content
    event, the service's `start` data with `at`: seconds from `sent` to it). `tally(n)` is
    told of every n content events as they arrive. Raises Failure unless exactly `expect`
    content events and a proper end came."""
    service = target.kind == "service"
    marker = CONTENT[target.kind]
    first = -1.0
    count = 0
    start: dict[str, Any] | None = None
    ended = False
    pending = b""
    try:
        status = await conn.request(request)
        if status != 200:
            await conn.aclose()
            raise Failure(f"status {status}")
        while (data := await conn.part()) is not None:
            pending += data
            *events, pending = pending.split(b"\n\n")
            if not events:
                continue
            n = 0
            for event in events:
                if marker in event:
                    n += 1
                elif ended or not event or event.startswith(b":"):
                    continue
                elif service:
                    if b"\nevent: start\n" in event:
                        start = json.loads(event.partition(b"\ndata: ")[2])
                        start["at"] = time.perf_counter() - sent
                    elif b"\nevent: end\n" in event:
                        ended = True
                        if b'"finish_reason":"stop"' not in event:
                            raise Failure("end without finish_reason stop")
                    elif b"\nevent: error\n" in event:
                        code = json.loads(event.partition(b"\ndata: ")[2]).get("code")
                        raise Failure(f"error event {code}")
                elif event == b"data: [DONE]":
                    ended = True
                elif b'"error"' in event:
                    raise Failure("error chunk")
            if n:
                if first < 0:
                    first = time.perf_counter() - sent
                count += n
                if tally is not None:
                    tally(n)
    except (OSError, trio.BrokenResourceError) as error:
        await conn.aclose()
        raise Failure(f"{type(error).__name__}") from error
    except Failure:
        await conn.aclose()
        raise
    if not ended:
        await conn.aclose()
        raise Failure("stream ended without its end")
    if count != expect:
        raise Failure(f"{count} content events, not {expect}")
    return first, start


async def collect_reply(target: Target, request: bytes) -> dict[str, Any]:
    """One reply read slowly and completely: its events by name and its text."""
    conn = Connection(target.port)
    try:
        status = await conn.request(request)
        raw = await conn.body()
    finally:
        await conn.aclose()
    names: list[str] = []
    text = []
    start = end = None
    for event in raw.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in event.split("\n") if ": " in line)
        data = fields.get("data")
        if target.kind == "direct":
            if data and data != "[DONE]":
                for choice in json.loads(data)["choices"]:
                    text.append(choice["delta"].get("content") or "")
            continue
        if "event" not in fields:
            continue
        names.append(fields["event"])
        body = json.loads(data or "null")
        if fields["event"] == "content":
            text.append(body["content"])
        elif fields["event"] == "start":
            start = body
        elif fields["event"] == "end":
            end = body
    return {"status": status, "events": names, "text": "".join(text), "start": start, "end": end}


# -- the commands ---------------------------------------------------------------------------


def _contexts(starts: list[dict[str, Any]]) -> dict[str, Any]:
    """The range of the prompt sizes the service's `start` events reported."""
    if not starts:
        return {}
    context = [s.get("context_messages", 0) for s in starts]
    trimmed = [s.get("trimmed_messages", 0) for s in starts]
    return {"context": [min(context), max(context)], "trimmed": [min(trimmed), max(trimmed)]}


class Generator:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.pids: dict[str, int] = config["pids"]

    async def run(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.pop("op")
        return await getattr(self, f"op_{op}")(**command)

    def requests(
        self, target: Target, sessions: list[str] | None, count: int, message: str, history: int
    ) -> list[bytes]:
        return [
            target.stream_request(
                sessions[i % len(sessions)] if sessions else None, message, history
            )
            for i in range(count)
        ]

    async def op_sessions(self, count: int, concurrency: int = 16) -> dict[str, Any]:
        """`count` chat sessions on the bench model, each in a conversation of its own."""
        target = Target(self.config, "service")
        sessions: list[str] = []
        began = time.perf_counter()

        async def worker(share: int) -> None:
            conn = Connection(target.port)
            try:
                for _ in range(share):
                    conv = await target.call(conn, "/api/conversation/create", {"title": "bench"})
                    made = await target.call(
                        conn,
                        "/api/conversation/create_session",
                        {"conversation_id": conv["id"], "model_id": target.model_id},
                    )
                    sessions.append(made["id"])
            finally:
                await conn.aclose()

        async with trio.open_nursery() as nursery:
            for i in range(concurrency):
                nursery.start_soon(worker, count // concurrency + (i < count % concurrency))
        return {"sessions": sessions, "seconds": time.perf_counter() - began}

    async def op_history(
        self, sessions: list[str], messages: int, concurrency: int = 16
    ) -> dict[str, Any]:
        """Give each session `messages` earlier messages: user messages of ~210 characters,
        each answered by the mock in one 200-character chunk."""
        target = Target(self.config, "service")
        todo = list(sessions)
        starts: list[dict[str, Any]] = []
        errors: collections.Counter[str] = collections.Counter()
        began = time.perf_counter()

        async def worker() -> None:
            conn = Connection(target.port)
            try:
                while todo:
                    session = todo.pop()
                    for k in range(0, messages, 2):
                        request = target.stream_request(session, history_message(k), 0)
                        try:
                            _, start = await stream_reply(conn, target, request, 1, 0.0)
                        except Failure as failure:
                            errors[str(failure)] += 1
                            continue
                        if start and k == messages - 2:
                            starts.append(start)
            finally:
                await conn.aclose()

        async with trio.open_nursery() as nursery:
            for _ in range(min(concurrency, len(sessions))):
                nursery.start_soon(worker)
        seconds = time.perf_counter() - began
        replies = len(sessions) * ((messages + 1) // 2)
        return {"seconds": seconds, "replies": replies, "errors": dict(errors), **_contexts(starts)}

    async def op_ttfc(
        self,
        kind: str,
        count: int,
        chunks: int,
        sessions: list[str] | None = None,
        history: int = 0,
        warmup: int = 5,
    ) -> dict[str, Any]:
        """`count` single streams one after the other on one keep-alive connection."""
        target = Target(self.config, kind)
        requests = self.requests(target, sessions, count + warmup, user_message(chunks), history)
        conn = Connection(target.port)
        firsts: list[float] = []
        starts: list[dict[str, Any]] = []
        errors: collections.Counter[str] = collections.Counter()
        window = None
        try:
            for i, request in enumerate(requests):
                if i == warmup:
                    window = Window(self.pids)
                try:
                    first, start = await stream_reply(
                        conn, target, request, chunks, time.perf_counter()
                    )
                except Failure as failure:
                    errors[str(failure)] += 1
                    continue
                if i >= warmup:
                    firsts.append(first)
                    if start:
                        starts.append(start)
        finally:
            await conn.aclose()
        assert window is not None
        return {
            **window.close(),
            "ttfc": percentiles(firsts),
            "to_start": percentiles([start["at"] for start in starts]),
            "errors": dict(errors),
            **_contexts(starts),
        }

    async def op_throughput(
        self,
        kind: str,
        clients: int,
        seconds: float,
        chunks: int,
        sessions: list[str] | None = None,
        history: int = 0,
        warmup: float = 1.0,
    ) -> dict[str, Any]:
        """`clients` clients streaming replies back to back; what completes in the window
        [warmup, warmup + seconds] is counted, then each client finishes its reply."""
        target = Target(self.config, kind)
        count = max(clients, len(sessions or ()))  # a client takes turns on its sessions
        requests = self.requests(target, sessions, count, user_message(chunks), history)
        now = time.perf_counter()
        start, end = now + warmup, now + warmup + seconds
        counted = {"events": 0, "replies": 0}
        starts: list[dict[str, Any]] = []
        errors: collections.Counter[str] = collections.Counter()
        result: dict[str, Any] = {}

        def tally(n: int) -> None:
            if start <= time.perf_counter() <= end:
                counted["events"] += n

        async def client(mine: list[bytes]) -> None:
            conn = Connection(target.port)
            turn = 0
            try:
                while time.perf_counter() < end:
                    turn += 1
                    try:
                        _, began = await stream_reply(
                            conn, target, mine[turn % len(mine)], chunks, time.perf_counter(), tally
                        )
                    except Failure as failure:
                        errors[str(failure)] += 1
                        await trio.sleep(0.01)
                        continue
                    if start <= time.perf_counter() <= end:
                        counted["replies"] += 1
                    if began:
                        starts.append(began)
            finally:
                await conn.aclose()

        async def edges() -> None:
            await trio.sleep(max(0.0, start - time.perf_counter()))
            window = Window(self.pids)
            await trio.sleep(max(0.0, end - time.perf_counter()))
            result.update(window.close())

        with trio.fail_after(warmup + seconds + 300):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(edges)
                for i in range(clients):
                    nursery.start_soon(client, requests[i::clients])
        return {
            **result,
            "seconds": seconds,
            "replies_per_s": counted["replies"] / seconds,
            "events_per_s": counted["events"] / seconds,
            "errors": dict(errors),
            **_contexts(starts),
        }

    async def op_open(
        self,
        kind: str,
        n: int,
        chunks: int,
        delay_ms: int,
        ramp: float,
        sessions: list[str] | None = None,
        history: int = 0,
        patience: float = 60.0,
    ) -> dict[str, Any]:
        """`n` streams opened over `ramp` seconds, each on a new connection, held to their
        end: time to first content (from connecting), errors, the service's memory."""
        target = Target(self.config, kind)
        requests = self.requests(target, sessions, n, user_message(chunks, delay_ms), history)
        firsts: list[float] = []
        errors: collections.Counter[str] = collections.Counter()
        state = {"open": 0, "peak_open": 0, "rss": 0.0, "rss_at_peak": 0.0}
        service = self.pids["service"]
        began = time.perf_counter() + 0.05

        async def one(i: int) -> None:
            await trio.sleep(max(0.0, began + i * ramp / n - time.perf_counter()))
            conn = Connection(target.port)
            state["open"] += 1
            state["peak_open"] = max(state["peak_open"], state["open"])
            try:
                with trio.move_on_after(ramp + patience + chunks * delay_ms / 1000) as scope:
                    first, _ = await stream_reply(
                        conn, target, requests[i], chunks, time.perf_counter()
                    )
                    firsts.append(first)
                if scope.cancelled_caught:
                    errors["timeout"] += 1
            except Failure as failure:
                errors[str(failure)] += 1
            finally:
                state["open"] -= 1
                await conn.aclose()

        async def watch_memory(done: trio.Event) -> None:
            while not done.is_set():
                rss = memory_mib(service)
                state["rss"] = max(state["rss"], rss)
                if state["open"] == n:
                    state["rss_at_peak"] = max(state["rss_at_peak"], rss)
                with trio.move_on_after(0.05):
                    await done.wait()

        window = Window(self.pids)
        done = trio.Event()
        async with trio.open_nursery() as outer:
            outer.start_soon(watch_memory, done)
            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(one, i)
            done.set()
        p = percentiles(firsts)
        return {
            **window.close(),
            "n": n,
            "ttfc": p,
            "errors": dict(errors),
            "error_count": sum(errors.values()),
            "held": bool(firsts) and p["p95"] <= 1.0 and not errors,
            "peak_open": state["peak_open"],
            "service_rss_max": state["rss"],
            "service_rss_all_open": state["rss_at_peak"],
            "service_hwm": memory_mib(service, "VmHWM"),
        }

    async def op_verify(self, kind: str, chunks: int, session: str | None = None) -> dict[str, Any]:
        """One reply read completely: whether its text is the mock's, piece for piece."""
        target = Target(self.config, kind)
        reply = await collect_reply(target, target.stream_request(session, user_message(chunks), 0))
        return {**reply, "whole": reply["text"] == reply_text(chunks)}


def main() -> None:
    generator = Generator(json.loads(sys.stdin.readline()))
    for line in sys.stdin:
        try:
            result = trio.run(generator.run, json.loads(line))
        except Exception as error:  # reported to the bench, which stops
            traceback.print_exc()
            while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                error = error.exceptions[0]
            result = {"failed": f"{type(error).__name__}: {error}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
