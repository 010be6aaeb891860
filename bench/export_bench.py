"""What exporting an organisation costs the server: its memory and time while the export
streams, at sizes up to 1,000,000 messages.

For each size: starts `conversation-service serve` on a new SQLite file (its first start makes
the org and the token), stops it, fills the org through the store (`import_records`, fed by a
generator: conversations of `--per-conversation` messages of about `--chars` characters, a
user message and its reply in turn, every tenth reply rated), starts it again and reads
GET /api/conversation/export to its end, counting lines and bytes, while it samples the
server's resident memory from /proc every 20 ms.

Prints, per size: the server's RSS idle before the export, the highest RSS sampled while it
streamed, the file's size, the time and the rate. A file within `--max-import-bytes` (by
default the server's import cap, 64 MiB; the served process is given the same cap) is then
imported back through HTTP, and the same figures are printed for the import, which holds the
file in memory. The default is a scaled-down run; the full size is
one option away:

    .venv/bin/python bench/export_bench.py                           # 10,000 and 100,000
    .venv/bin/python bench/export_bench.py --messages 100000,1000000  # the full size
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from uuid import UUID, uuid4

import httpx
import trio
import trio_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from conversation_service.adapters.sql import open_sql_store, sqlite_url_for_dir  # noqa: E402
from conversation_service.domain.feedback import Feedback, Rating  # noqa: E402
from conversation_service.domain.model import (  # noqa: E402
    ChatSession,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    Usage,
)
from conversation_service.domain.session_machine import SessionState  # noqa: E402
from conversation_service.domain.transfer import MessageRecord, TransferRecord  # noqa: E402

ECHO = UUID("6563686f-0000-4000-8000-000000000000")
T = TypeVar("T")
WORDS = "vector databases index embeddings so that nearest neighbours come back fast".split()


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    assert found, status
    return int(found.group(1))


def serve(data_dir: Path, max_import_bytes: int) -> tuple[subprocess.Popen[str], str, str]:
    """A served process on `data_dir`: (process, its URL, everything it printed)."""
    command = [
        sys.executable, "-m", "conversation_service.entrypoints.cli", "serve", "--port", "0",
        "--data-dir", str(data_dir),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CONVERSATION_SERVICE_DATABASE_URL", None)  # this bench's own SQLite file
    env["CONVERSATION_SERVICE_MAX_IMPORT_BYTES"] = str(max_import_bytes)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdout is not None
    text = ""
    deadline = time.monotonic() + 120
    while "ready on" not in text and time.monotonic() < deadline:
        text += process.stdout.readline()
    found = re.search(r"ready on (http://\S+)", text)
    assert found, text
    return process, found.group(1), text


def size_of(data_dir: Path) -> int:
    """The bytes of the SQLite database (with its WAL)."""
    return sum(f.stat().st_size for f in data_dir.glob("conversations.db*"))


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(60)


def records(
    org_id: UUID, messages: int, per_conversation: int, chars: int
) -> Iterator[TransferRecord]:
    """An organisation's records, made as they are stored: nothing is held but the current
    conversation's ids."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    words = (WORDS * (chars // 6 + 1))[: max(1, chars // 6)]
    text = " ".join(words)[:chars]
    made = 0
    while made < messages:
        at = start + timedelta(seconds=made)
        ids = [uuid4() for _ in range(min(per_conversation, messages - made))]
        conversation = Conversation(
            id=uuid4(), org_id=org_id, title=f"Conversation {made // per_conversation}",
            is_archived=False, created_at=at, updated_at=at,
        )  # fmt: skip
        session = ChatSession(
            id=uuid4(), org_id=org_id, conversation_id=conversation.id, model_id=ECHO,
            status=SessionState.ACTIVE, created_at=at, updated_at=at, head_id=ids[-1],
        )  # fmt: skip
        yield conversation
        yield session
        for index, message_id in enumerate(ids):
            at = start + timedelta(seconds=made)
            reply = made % 2 == 1
            message = Message(
                id=message_id, org_id=org_id, conversation_id=conversation.id,
                chat_session_id=session.id, parent_id=ids[index - 1] if index else None,
                role=MessageRole.ASSISTANT if reply else MessageRole.USER,
                content=f"Echo: {text}" if reply else text, status=MessageStatus.COMPLETED,
                model_id=ECHO if reply else None, created_at=at, updated_at=at,
                finish_reason="stop" if reply else None,
                usage=Usage(prompt_tokens=40, completion_tokens=42, estimated=True)
                if reply else None,
            )  # fmt: skip
            feedback = None
            if reply and made % 20 == 1:
                feedback = Feedback(
                    message_id=message.id, org_id=org_id, conversation_id=conversation.id,
                    rating=Rating.UP, comment="clear", created_at=at, updated_at=at,
                )  # fmt: skip
            yield MessageRecord(message=message, feedback=feedback)
            made += 1


async def fill(data_dir: Path, org_id: UUID, args: argparse.Namespace, messages: int) -> float:
    started = time.perf_counter()
    async with trio_asyncio.open_loop(), open_sql_store(sqlite_url_for_dir(data_dir)) as store:
        report = await store.import_records(
            org_id,
            lambda: records(org_id, messages, args.per_conversation, args.chars),
            new_id=uuid4,
        )
    assert report.messages == messages, report
    return time.perf_counter() - started


async def while_sampling(pid: int, work: Callable[[], Awaitable[T]]) -> tuple[T, int, float]:
    """Run `work` while sampling the server's RSS every 20 ms: (its result, the highest RSS
    sampled, in KiB, the seconds it took)."""
    peak = memory_kib(pid)
    done = trio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, memory_kib(pid))
            with trio.move_on_after(0.02):
                await done.wait()

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        try:
            result = await work()
        finally:
            done.set()
    return result, peak, time.perf_counter() - started


async def export(client: httpx.AsyncClient, org_id: str, keep: int) -> tuple[dict, int, bytes]:
    """Read the whole export: (its end line, its size, the file if it is at most `keep`
    bytes, else b"")."""
    size, tail, kept = 0, b"", bytearray()
    async with client.stream(
        "GET", "/api/conversation/export", params={"org_id": org_id}
    ) as response:
        assert response.status_code == 200, await response.aread()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            tail = (tail + chunk)[-4096:]
            if size <= keep:
                kept.extend(chunk)
    end = json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    return end, size, bytes(kept) if size <= keep else b""


async def import_file(client: httpx.AsyncClient, org_id: str, body: bytes) -> dict:
    """Import `body` into the organisation it came from: every id is taken, so all are new."""
    response = await client.post(
        "/api/conversation/import",
        params={"org_id": org_id},
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 201, response.text[:2000]
    report: dict = response.json()
    return report


async def one_size(args: argparse.Namespace, messages: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="export-bench-") as folder:
        return await measure(Path(folder) / "data", args, messages)


async def measure(data_dir: Path, args: argparse.Namespace, messages: int) -> dict[str, float]:
    process, _, printed = serve(data_dir, args.max_import_bytes)
    stop(process)
    found = re.search(r"org_id: (\S+)\s+token:\s+(\S+)", printed)
    assert found, printed
    org_id, token = found.groups()
    fill_seconds = await fill(data_dir, UUID(org_id), args, messages)
    database = size_of(data_dir)
    process, url, _ = serve(data_dir, args.max_import_bytes)
    pid, row = process.pid, {"messages": messages, "fill": fill_seconds, "database": database}
    try:
        async with httpx.AsyncClient(
            base_url=url, timeout=3600, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            await trio.sleep(1)
            row["idle"] = memory_kib(pid)
            exported, row["peak"], row["seconds"] = await while_sampling(
                pid, lambda: export(client, org_id, args.max_import_bytes)
            )
            end, row["bytes"], body = exported
            if body:
                row["import_idle"] = memory_kib(pid)
                report, row["import_peak"], row["import_seconds"] = await while_sampling(
                    pid, lambda: import_file(client, org_id, body)
                )
                assert report["messages"] == messages, report
    finally:
        stop(process)
    conversations = -(-messages // args.per_conversation)
    expected = {"conversations": conversations, "sessions": conversations, "messages": messages}
    assert end == {"type": "end", **expected}, end
    return row


async def main(args: argparse.Namespace) -> None:
    rows = []
    for messages in [int(size) for size in args.messages.split(",")]:
        rows.append(await one_size(args, messages))
        print(
            f"{messages:>9,} messages: filled through the store in {rows[-1]['fill']:.0f} s "
            f"(database {rows[-1]['database'] / MIB:,.0f} MiB)",
            flush=True,
        )
    print("\nGET /api/conversation/export (the whole organisation):")
    table(rows, "")
    imported = [row for row in rows if "import_seconds" in row]
    if imported:
        print("\nPOST /api/conversation/import of that file (back into the same organisation):")
        table(imported, "import_")
    for row in rows:
        if "import_seconds" not in row:
            print(
                f"({row['messages']:,} messages: the file is over --max-import-bytes: not imported)"
            )


MIB = 2**20


def table(rows: list[dict[str, float]], kind: str) -> None:
    print(
        f"{'messages':>10}  {'file':>9}  {'seconds':>7}  {'messages/s':>10}  {'MiB/s':>6}  "
        f"{'RSS before':>10}  {'RSS peak':>9}  {'peak - before':>13}"
    )
    for row in rows:
        seconds, idle, peak = (row[kind + name] for name in ("seconds", "idle", "peak"))
        print(
            f"{row['messages']:>10,}  {row['bytes'] / MIB:>5,.0f} MiB  {seconds:>7.1f}  "
            f"{row['messages'] / seconds:>10,.0f}  {row['bytes'] / MIB / seconds:>6.1f}  "
            f"{idle / 1024:>6.1f} MiB  {peak / 1024:>5.1f} MiB  {(peak - idle) / 1024:>9.1f} MiB"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--messages", default="10000,100000", help="sizes to measure, comma-separated"
    )
    parser.add_argument("--per-conversation", type=int, default=100)
    parser.add_argument("--chars", type=int, default=200, help="about this long, each message")
    parser.add_argument(
        "--max-import-bytes",
        type=int,
        default=64 * 2**20,
        help="an export at most this large is imported back (the server's cap is set to it; "
        "its default is the server's)",
    )
    trio.run(main, parser.parse_args())
