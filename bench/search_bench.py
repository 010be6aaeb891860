"""Conversation search on SQLite at scale: an organisation of N messages and a neighbour of
the same size, sharing one vocabulary, in one temp SQLite file.

1. Loads both organisations' rows with plain inserts into a database of the schema before
   search (the version before the search migration), as an existing installation has them.
2. Opens the store: the search migration builds the FTS5 index of every title and message;
   its time is the index build time (and the file's size before and after).
3. Runs a set of queries (rare, common and very common words, two and three words, phrases,
   prefixes, the archive filter) for the first organisation, `--rounds` times each, through
   the use case (the store's statement and the snippets, as the HTTP route calls it), and
   prints the time per query: p50, p95 and the slowest, in all and per kind of query.
4. Writes messages through the store (20 tasks) before and after the index: the triggers'
   cost.

Words follow Zipf's law over a vocabulary of made-up words: the most common is in nine
messages of ten (a stop word), most are rare; the run prints how common a few are.

    .venv/bin/python bench/search_bench.py --messages 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import trio
import trio_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from conversation_service.adapters.sql import (  # noqa: E402
    SqlStore,
    open_sql_store,
    schema,
    sqlite_url_for_dir,
)
from conversation_service.adapters.sql.opening import DATABASE_FILE  # noqa: E402
from conversation_service.adapters.sql.rows import format_timestamp  # noqa: E402
from conversation_service.domain.model import Message, MessageRole, MessageStatus  # noqa: E402
from conversation_service.service_layer.search import search_conversations  # noqa: E402
from tests.adapters.sql_databases import written_by_version  # noqa: E402

SYLLABLES = "ka lo mi ne ru ta vi so pe du ga ri mo le si na tu be ko fa".split()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """`size` distinct made-up words, two to four syllables."""
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


class Text:
    """Words drawn by Zipf's law (the word of rank r with weight 1/r)."""

    def __init__(self, words: list[str], rng: random.Random) -> None:
        self.words, self.rng = words, rng
        self.cumulative = list(itertools.accumulate(1 / rank for rank in range(1, len(words) + 1)))

    def __call__(self, low: int, high: int) -> str:
        count = self.rng.randint(low, high)
        chosen = self.rng.choices(self.words, cum_weights=self.cumulative, k=count)
        return " ".join(chosen).capitalize() + "."


def rows(org: str, messages: int, per: int, text: Text, rng: random.Random) -> Iterator[tuple]:
    """(table, row) of one organisation: conversations, a session each, their messages."""
    yield "orgs", (org, f"org {org[:8]}", format_timestamp(T0))
    for c in range(messages // per):
        conversation, session = (
            str(UUID(int=rng.getrandbits(128))),
            str(UUID(int=rng.getrandbits(128))),
        )
        at = format_timestamp(T0 + timedelta(minutes=c))
        yield "conversations", (conversation, org, text(3, 6), c % 10 == 0, at, at)
        yield (
            "chat_sessions",
            (session, org, conversation, str(UUID(int=1)), "active", at, at, "session"),
        )
        for m in range(per):
            role = "user" if m % 2 == 0 else "assistant"
            yield "messages", (
                str(UUID(int=rng.getrandbits(128))), org, conversation, session, role,
                text(5, 60), "completed", at, at,
            )  # fmt: skip


INSERTS = {
    "orgs": "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)",
    "conversations": "INSERT INTO conversations (id, org_id, title, is_archived, created_at, "
    "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
    "chat_sessions": "INSERT INTO chat_sessions (id, org_id, conversation_id, model_id, status, "
    "created_at, updated_at, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "messages": "INSERT INTO messages (id, org_id, conversation_id, chat_session_id, role, "
    "content, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
}


def queries(words: list[str]) -> list[tuple[str, str, dict]]:
    """(kind, q, options): words by how common they are, and the syntax's forms."""
    w = words
    return [
        *[("rare word", w[rank], {}) for rank in (20_000, 30_000, 40_000, 45_000)],
        *[("word", w[rank], {}) for rank in (300, 1_000, 3_000, 10_000)],
        *[("common word", w[rank], {}) for rank in (5, 10, 30, 100)],
        *[("very common word", w[rank], {}) for rank in (0, 1, 2)],
        *[("two words", f"{w[a]} {w[b]}", {}) for a, b in ((0, 1), (3, 50), (20, 400), (8, 9000))],
        ("three words", f"{w[0]} {w[1]} {w[2]}", {}),
        ("three words", f"{w[10]} {w[60]} {w[300]}", {}),
        *[("phrase", f'"{w[a]} {w[b]}"', {}) for a, b in ((0, 1), (2, 7), (15, 40))],
        *[("prefix", f"{w[rank][:n]}*", {}) for rank, n in ((0, 3), (500, 4), (20_000, 5))],
        ("prefix", f"{w[0][:2]}*", {}),  # two letters: a good share of the vocabulary
        ("archived only", w[10], {"is_archived": True}),
        ("archived only", f"{w[0]} {w[1]}", {"is_archived": True}),
        ("no match", "zzzzzz", {}),
    ]


def _mib(file: Path) -> str:
    """The database's size, its write-ahead log checkpointed into it first."""
    with sqlite3.connect(file) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return f"{file.stat().st_size / 2**20:.1f}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main(messages: int, per: int, rounds: int, writes: int, seed: int, keep: bool) -> None:
    rng = random.Random(seed)
    words = vocabulary(50_000, rng)
    text = Text(words, rng)
    folder = Path(tempfile.mkdtemp(prefix="search-bench-"))
    url, file = sqlite_url_for_dir(folder), folder / DATABASE_FILE
    print(f"SQLite search: 2 organisations x {messages:,} messages ({messages // per:,} "
          f"conversations of {per}), 50,000 words by Zipf's law; {file}")  # fmt: skip
    orgs = [UUID(int=rng.getrandbits(128)) for _ in range(2)]

    # 1. The database as it was before search, filled with plain inserts; then writes through
    # the store without the index, for comparison.
    # (The store as that version was: without the columns later migrations added.)
    with written_by_version(schema.MIGRATIONS.index(schema.SEARCH_INDEX)):
        async with trio_asyncio.open_loop(), open_sql_store(url) as store:
            started = time.perf_counter()
            with sqlite3.connect(file) as db:
                for org in orgs:
                    found = rows(str(org), messages, per, text, rng)
                    for table, group in itertools.groupby(found, lambda row: row[0]):
                        db.executemany(INSERTS[table], (row for _, row in group))
            print(f"loaded {2 * messages:,} messages in {time.perf_counter() - started:.1f} s: "
                  f"{_mib(file)} MiB")  # fmt: skip
            print(f"writes without the index: {await _writes(store, orgs[1], text, writes)}")

    async with trio_asyncio.open_loop():
        # 2. The search migration builds the index.
        size = _mib(file)
        started = time.perf_counter()
        async with open_sql_store(url) as store:
            built = time.perf_counter() - started
            with sqlite3.connect(file) as db:
                indexed = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
                titles = db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
            print(f"index build (the search migration: {indexed:,} messages, {titles:,} "
                  f"titles): {built:.1f} s = {indexed / built:,.0f} messages/s; file "
                  f"{size} -> {_mib(file)} MiB")  # fmt: skip
            print(f"writes with the index:    {await _writes(store, orgs[1], text, writes)}")

            # 3. Queries, through the use case: the statement, then the snippets.
            timings: dict[str, list[float]] = {}
            found_counts: dict[str, int] = {}
            for round_ in range(rounds + 1):
                for kind, q, options in queries(words):
                    started = time.perf_counter()
                    page = await search_conversations(
                        store,
                        orgs[0],
                        q,
                        is_archived=options.get("is_archived"),
                        limit=20,
                        offset=0,
                    )
                    took = (time.perf_counter() - started) * 1000
                    if round_:  # the first round warms the page cache up
                        timings.setdefault(kind, []).append(took)
                        found_counts[q] = len(page.results.items)
            every = [t for kind in timings.values() for t in kind]
            print(f"\n{len(queries(words))} queries x {rounds} rounds for the first "
                  "organisation, limit 20, with snippets (ms per query):")  # fmt: skip
            print(f"{'':>18}  {'p50':>7} {'p95':>7} {'max':>7}")
            for kind, values in [*timings.items(), ("all", every)]:
                print(f"{kind:>18}  {statistics.median(values):7.1f} "
                      f"{percentile(values, 0.95):7.1f} {max(values):7.1f}")  # fmt: skip
            counts = sorted(found_counts.values())
            print(f"results per query (of 20): {counts[0]} to {counts[-1]}, "
                  f"median {statistics.median(counts):.0f}")  # fmt: skip
            with sqlite3.connect(file) as db:
                shares = [
                    db.execute(
                        "SELECT COUNT(*) FROM messages WHERE org_id = ? AND ' ' || lower(content) "
                        "|| ' ' LIKE ?",
                        (str(orgs[0]), f"% {words[rank]}%"),
                    ).fetchone()[0]
                    / messages
                    for rank in (0, 10, 1_000)
                ]
            print("messages holding the words of rank 1, 11, 1001: "
                  + ", ".join(f"{share:.1%}" for share in shares))  # fmt: skip
    if not keep:
        shutil.rmtree(folder)


async def _a_session(store: SqlStore, org: UUID) -> tuple[UUID, UUID]:
    page = await store.list_conversations(org, is_archived=None, limit=1, offset=0)
    conversation = page.items[0]
    sessions = await store.list_sessions(org, conversation.id)
    return conversation.id, sessions[0].id


async def _writes(store: SqlStore, org: UUID, text: Text, writes: int) -> str:
    """Messages of 5-60 words added through the store from 20 tasks: how many per second."""
    conversation_id, session_id = await _a_session(store, org)
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(_writer, store, org, conversation_id, session_id, text, writes // 20)
    took = time.perf_counter() - started
    added = 20 * (writes // 20)
    return f"{added:,} messages from 20 tasks in {took:.2f} s = {added / took:,.0f} messages/s"


async def _writer(
    store: SqlStore, org: UUID, conversation_id: UUID, session_id: UUID, text: Text, count: int
) -> None:
    for _ in range(count):
        now = datetime.now(UTC)
        message = Message(
            id=uuid4(),
            org_id=org,
            conversation_id=conversation_id,
            chat_session_id=session_id,
            role=MessageRole.USER,
            content=text(5, 60),
            status=MessageStatus.COMPLETED,
            model_id=None,
            created_at=now,
            updated_at=now,
        )
        await store.add_message(message)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="per organisation")
    parser.add_argument("--per-conversation", type=int, default=20, help="messages each")
    parser.add_argument("--rounds", type=int, default=5, help="times each query runs")
    parser.add_argument("--writes", type=int, default=5_000, help="messages written, each way")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="keep the database file")
    args = parser.parse_args()
    trio.run(
        main,
        args.messages,
        args.per_conversation,
        args.rounds,
        args.writes,
        args.seed,
        args.keep,
    )
