"""What the server's memory does under big replies and many live sessions.

Starts `conversation-service serve` as its own process (a temp SQLite file, echo with no
word delay) and reads its resident memory from /proc while a client in this process:

1. streams `--big-sessions` replies of `--big-kb` KB each at once (one per session, echo
   answers word by word, so each reply is ~20,000 chunks), and
2. sends one short message to each of `--idle-sessions` sessions, whose actors then stay
   live (idle) until the actor idle timeout.

Prints the server's RSS idle, its peak while the big replies stream, after them, and with
the idle sessions live, and what that comes to per session.

    .venv/bin/python bench/memory_bench.py --big-sessions 100 --big-kb 100 --idle-sessions 1000
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio
from httpx_sse import aconnect_sse

ECHO = "6563686f-0000-4000-8000-000000000000"


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    assert found, status
    return int(found.group(1))


def start_server(data_dir: Path, max_streams: int) -> tuple[subprocess.Popen[str], str, str, str]:
    command = [
        sys.executable, "-m", "conversation_service.entrypoints.cli", "serve", "--port", "0",
        "--data-dir", str(data_dir), "--echo-delay-ms", "0", "--rate-limit", "1000000/minute",
        "--max-streams-per-org", str(max_streams),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CONVERSATION_SERVICE_MAX_REPLIES_PER_ORG": str(max_streams),
    }
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdout is not None
    text = ""
    deadline = time.monotonic() + 60
    while "ready on" not in text and time.monotonic() < deadline:
        text += process.stdout.readline()
    found = re.search(r"org_id: (\S+)\s+token:\s+(\S+).*ready on (http://\S+)", text, re.S)
    assert found, text
    org, token, url = found.groups()
    return process, url, org, token


async def create_sessions(client: httpx.AsyncClient, org: str, count: int) -> list[str]:
    conversation = (
        await client.post(
            "/api/conversation/create", params={"org_id": org}, json={"title": "bench"}
        )
    ).json()["id"]
    sessions = []
    for _ in range(count):
        response = await client.post(
            "/api/conversation/create_session",
            params={"org_id": org},
            json={"conversation_id": conversation, "model_id": ECHO},
        )
        sessions.append(response.json()["id"])
    return sessions


async def stream(client: httpx.AsyncClient, org: str, session: str, message: str) -> int:
    """Send `message` and read the reply to its end; the reply's length."""
    length = 0
    async with aconnect_sse(
        client,
        "POST",
        "/api/conversation/stream_chat",
        params={"org_id": org},
        json={"chat_session_id": session, "message": message},
    ) as source:
        assert source.response.status_code == 200, await source.response.aread()
        async for event in source.aiter_sse():
            if event.event == "content":
                length += len(event.json()["content"])
            if event.event == "error":
                raise AssertionError(event.data)
    return length


async def main(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp()) / "data"
    process, url, org, token = start_server(data_dir, args.big_sessions + 10)
    pid = process.pid
    try:
        limits = httpx.Limits(max_connections=args.big_sessions + 10)
        async with httpx.AsyncClient(
            base_url=url, timeout=300, limits=limits,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:  # fmt: skip
            big = await create_sessions(client, org, args.big_sessions)
            idle_sessions = await create_sessions(client, org, args.idle_sessions)
            await trio.sleep(1)
            idle_kib = memory_kib(pid, "VmRSS")
            words = " ".join(f"w{i % 1000:03d}" for i in range(args.big_kb * 1000 // 5))
            message = words[: args.big_kb * 1000]  # 100 KB: the largest message allowed
            started = time.perf_counter()
            lengths: list[int] = []

            async def one(session: str) -> None:
                lengths.append(await stream(client, org, session, message))

            async with trio.open_nursery() as nursery:
                for session in big:
                    nursery.start_soon(one, session)
            big_seconds = time.perf_counter() - started
            peak_kib = memory_kib(pid, "VmHWM")
            after_big_kib = memory_kib(pid, "VmRSS")
            assert all(n == len(message) + len("Echo: ") for n in lengths), lengths[:3]

            limiter = trio.CapacityLimiter(20)

            async def touch(session: str) -> None:
                async with limiter:
                    await stream(client, org, session, "hello")

            async with trio.open_nursery() as nursery:
                for session in idle_sessions:
                    nursery.start_soon(touch, session)
            idle_live_kib = memory_kib(pid, "VmRSS")
    finally:
        process.terminate()
        process.wait(30)

    mib = 1024
    print(f"server RSS, idle:                                  {idle_kib / mib:8.1f} MiB")
    print(
        f"{args.big_sessions} sessions each streaming a {args.big_kb} KB echo reply "
        f"(~{args.big_kb * 1000 // 5:,} chunks each), at once, in {big_seconds:.1f} s:"
    )
    print(f"  peak RSS while they streamed:                    {peak_kib / mib:8.1f} MiB")
    print(
        f"  peak over idle, per session:                     "
        f"{(peak_kib - idle_kib) / args.big_sessions / mib:8.2f} MiB"
    )
    print(f"  RSS after they ended:                            {after_big_kib / mib:8.1f} MiB")
    print(
        f"{args.idle_sessions} more sessions live and idle (each replied once): RSS "
        f"{idle_live_kib / mib:.1f} MiB, "
        f"{(idle_live_kib - after_big_kib) / args.idle_sessions:.1f} KiB a session"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-sessions", type=int, default=100)
    parser.add_argument("--big-kb", type=int, default=100)
    parser.add_argument("--idle-sessions", type=int, default=1000)
    trio.run(main, parser.parse_args())
