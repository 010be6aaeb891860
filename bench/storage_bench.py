"""Throughput of the SQL store: N concurrent trio tasks writing, then reading, a temp SQLite file.

Each phase stops at a count or a time limit, whichever comes first, and prints what it did:

    .venv/bin/python bench/storage_bench.py --tasks 20 --seconds 3 --max-ops 20000
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import trio
import trio_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from conversation_service.adapters.sql import SqlStore, open_sql_store, sqlite_url_for_dir  # noqa: E402
from conversation_service.domain.model import (  # noqa: E402
    ChatSession,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    Org,
)
from conversation_service.domain.session_machine import SessionState  # noqa: E402


async def _phase(
    name: str, tasks: int, seconds: float, max_ops: int, op: Callable[[int], Awaitable[object]]
) -> int:
    """Run `op` from `tasks` tasks until `max_ops` calls or `seconds` pass; print the rate."""
    counter = itertools.count()
    done = 0

    async def worker() -> None:
        nonlocal done
        while (n := next(counter)) < max_ops:
            await op(n)
            done += 1

    started = time.perf_counter()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(worker)
    elapsed = time.perf_counter() - started
    print(f"{name:>7}: {done:6d} ops in {elapsed:5.2f} s = {done / elapsed:8.0f} ops/s")
    return done


async def _seed(store: SqlStore) -> tuple[Org, Conversation, ChatSession]:
    now = datetime.now(UTC)
    org = Org(id=uuid4(), name="bench", created_at=now)
    conversation = Conversation(
        id=uuid4(), org_id=org.id, title="bench", is_archived=False, created_at=now, updated_at=now
    )
    session = ChatSession(
        id=uuid4(),
        org_id=org.id,
        conversation_id=conversation.id,
        model_id=uuid4(),
        status=SessionState.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    await store.add_org(org)
    await store.add_conversation(conversation)
    await store.add_session(session)
    return org, conversation, session


async def main(tasks: int, seconds: float, max_ops: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        url = sqlite_url_for_dir(Path(data_dir))
        async with trio_asyncio.open_loop(), open_sql_store(url) as store:
            org, conversation, session = await _seed(store)
            written: list[Message] = []

            async def write(n: int) -> None:
                now = datetime.now(UTC)
                message = Message(
                    id=uuid4(),
                    org_id=org.id,
                    conversation_id=conversation.id,
                    chat_session_id=session.id,
                    role=MessageRole.USER,
                    content=f"message {n} " + "x" * 200,
                    status=MessageStatus.COMPLETED,
                    model_id=None,
                    created_at=now,
                    updated_at=now,
                )
                await store.add_message(message)  # an insert plus the conversation's bump
                written.append(message)

            async def read(n: int) -> None:
                if n % 2:
                    await store.get_message(org.id, written[n % len(written)].id)
                else:
                    await store.list_messages(org.id, conversation.id, limit=20, offset=n % 100)

            print(f"SqlStore on SQLite (WAL), {tasks} concurrent trio tasks, file {url}")
            writes = await _phase("writes", tasks, seconds, max_ops, write)
            if writes:
                await _phase("reads", tasks, seconds, max_ops, read)
            page = await store.list_messages(org.id, conversation.id, limit=1, offset=0)
            print(f"stored messages check: first page has_more={page.has_more}, wrote {writes}")
            print("reads alternate get_message and a 20-message list_messages page")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20, help="concurrent trio tasks")
    parser.add_argument("--seconds", type=float, default=3.0, help="time limit per phase")
    parser.add_argument("--max-ops", type=int, default=20_000, help="call limit per phase")
    args = parser.parse_args()
    trio.run(main, args.tasks, args.seconds, args.max_ops)
