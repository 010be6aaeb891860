"""End-to-end streaming through the real server: many concurrent stream_chat calls on echo.

Starts the service in-process on loopback (a temp SQLite file, echo with no word delay),
runs `--clients` concurrent clients, each sending `--messages` messages on its own session
and reading every reply to its end, then prints: replies/s, events/s, time to the `start`
event and to the first content (median and p95), request rate of a plain read, and the
process's peak RSS. Bounded by count and by `--seconds`.

    .venv/bin/python bench/stream_bench.py --clients 50 --messages 10 --words 50
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio
from httpx_sse import aconnect_sse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from conversation_service.domain.model import AccessRole  # noqa: E402
from conversation_service.entrypoints.server import running_server  # noqa: E402
from conversation_service.entrypoints.settings import Settings  # noqa: E402

ECHO = "6563686f-0000-4000-8000-000000000000"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    settings = Settings(
        port=0,
        data_dir=Path(tempfile.mkdtemp()) / "data",
        echo_delay_ms=0,
        rate_limit="10000000/minute",
        max_streams_per_org=args.clients * 2,
        shutdown_grace=1.0,
    )
    to_start: list[float] = []
    to_content: list[float] = []
    events = replies = 0
    message = " ".join(f"w{i}" for i in range(args.words))
    async with running_server(settings) as server:
        org = await server.services.admin.create_org("bench")
        token = (await server.services.admin.create_token(org.id, AccessRole.MEMBER)).token
        limits = httpx.Limits(max_connections=args.clients + 5)
        async with httpx.AsyncClient(
            base_url=server.base_url, timeout=60, limits=limits,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:  # fmt: skip
            q = {"org_id": str(org.id)}

            async def one_client() -> None:
                nonlocal events, replies
                conv = (await client.post("/api/conversation/create", params=q,
                                          json={"title": "bench"})).json()  # fmt: skip
                session = (await client.post("/api/conversation/create_session", params=q,
                                             json={"conversation_id": conv["id"],
                                                   "model_id": ECHO})).json()  # fmt: skip
                for _ in range(args.messages):
                    sent = time.perf_counter()
                    first = None
                    async with aconnect_sse(
                        client, "POST", "/api/conversation/stream_chat", params=q,
                        json={"chat_session_id": session["id"], "message": message},
                    ) as source:  # fmt: skip
                        async for sse in source.aiter_sse():
                            events += 1
                            if sse.event == "start":
                                to_start.append(time.perf_counter() - sent)
                            elif sse.event == "content" and first is None:
                                first = time.perf_counter() - sent
                                to_content.append(first)
                    replies += 1

            began = time.perf_counter()
            with trio.move_on_after(args.seconds) as scope:
                async with trio.open_nursery() as nursery:
                    for _ in range(args.clients):
                        nursery.start_soon(one_client)
            elapsed = time.perf_counter() - began

            reads = 0
            read_began = time.perf_counter()
            with trio.move_on_after(min(5.0, args.seconds)):
                while reads < 2000:
                    await client.get("/api/conversation/list", params={**q, "limit": "20"})
                    reads += 1
            read_elapsed = time.perf_counter() - read_began

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"clients={args.clients} messages/client={args.messages} words/reply={args.words + 1}"
          f"{' (stopped at the time limit)' if scope.cancelled_caught else ''}")  # fmt: skip
    print(f"replies: {replies} in {elapsed:.2f} s = {replies / elapsed:.1f} replies/s")
    print(f"events:  {events} = {events / elapsed:.0f} events/s")
    if to_start:
        print(f"time to start:   median {statistics.median(to_start) * 1000:.1f} ms, "
              f"p95 {percentile(to_start, 0.95) * 1000:.1f} ms")  # fmt: skip
        print(f"time to content: median {statistics.median(to_content) * 1000:.1f} ms, "
              f"p95 {percentile(to_content, 0.95) * 1000:.1f} ms")  # fmt: skip
    print(f"list (20 rows), one client: {reads / read_elapsed:.0f} req/s")
    print(f"peak RSS of this process (server and clients): {peak_mb:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--words", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    trio.run(main, parser.parse_args())
