"""The SQL stores' full-text index, on SQLite (FTS5) and PostgreSQL (tsvector): it follows
every write, whatever statement makes it; a database from before it gets it when migrated;
no text reaches either engine as syntax; and what it finds is what the in-memory store finds
(the engines rank differently: only the order that does not depend on relevance is compared)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversation_service.adapters.memory_store import InMemoryStore
from conversation_service.adapters.sql import SqlStore, open_sql_store, schema
from conversation_service.adapters.sql.dialects import POSTGRESQL, SQLITE
from conversation_service.adapters.sql.search_queries import match_text
from conversation_service.adapters.sql.search_schema import TOKENIZER
from conversation_service.domain.errors import InvalidField
from conversation_service.domain.model import MessageRole, MessageStatus
from conversation_service.domain.search import parse_query
from conversation_service.testing.store_contract.search import Corpus, new_org, titles
from tests import postgres_server
from tests.adapters.sql_databases import is_postgres, query, written_by_version


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[SqlStore]:
    async with trio_asyncio.open_loop(), open_sql_store(url) as store:
        yield store


def check_index(url: str) -> None:
    """FTS5's own consistency check of its index (PostgreSQL's GIN has none to run)."""
    if not is_postgres(url):
        for table in ("message_search", "conversation_search"):
            query(url, f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")


async def test_the_index_follows_renames_and_deletes_by_any_statement(
    sql_url: str, values: Any
) -> None:
    # Statements of the store's own and from outside it (another engineer's rename or
    # delete, an operator's cleanup): the database keeps the index in step with all of them.
    async with opened(sql_url) as store:
        org = await new_org(store, values)
        corpus = Corpus(store, values, org)
        kept, _, (first, second) = await corpus.conversation(
            "Old title", "apples and pears", "pears only"
        )
        gone, gone_session, (doomed,) = await corpus.conversation("Doomed plans", "apples")
        assert sorted(await titles(store, org, "apples")) == ["Doomed plans", "Old title"]

        query(sql_url, "UPDATE conversations SET title = :t WHERE id = :id",
              {"t": "Fresh name", "id": str(kept.id)})  # fmt: skip
        assert await titles(store, org, "old") == []
        assert await titles(store, org, "fresh name") == ["Fresh name"]

        query(sql_url, "DELETE FROM messages WHERE id = :id", {"id": str(first.id)})
        (hit,) = (await store.search_conversations(
            org.id, parse_query("pears"), is_archived=None, limit=10, offset=0
        )).items  # fmt: skip
        assert hit.message_ids == (second.id,) and hit.message_count == 1
        assert await titles(store, org, "apples") == ["Doomed plans"]

        for table, key in (("messages", "conversation_id"), ("chat_sessions", "conversation_id"),
                           ("conversations", "id")):  # fmt: skip
            query(sql_url, f"DELETE FROM {table} WHERE {key} = :id", {"id": str(gone.id)})
        assert await titles(store, org, "apples") == []
        assert await titles(store, org, "doomed") == []
        assert doomed.id and gone_session.id

        # A new conversation and message after all that are found as ever.
        await corpus.conversation("Doomed again", "apples again")
        assert await titles(store, org, "doomed") == ["Doomed again"]
        assert await titles(store, org, "apples") == ["Doomed again"]
        # Terms must all be in the title or all in one message.
        assert await titles(store, org, "doomed apples") == []
    check_index(sql_url)


async def test_a_database_from_before_search_is_indexed_when_migrated(
    sql_url: str, values: Any
) -> None:
    search_version = schema.MIGRATIONS.index(schema.SEARCH_INDEX) + 1
    with written_by_version(search_version - 1):
        async with opened(sql_url) as store:
            org = await new_org(store, values)
            _, session, _ = await Corpus(store, values, org).conversation(
                "Legacy archive", "an older message"
            )
            reply = values.message(
                session, content="half written", created=9, role=MessageRole.ASSISTANT,
                status=MessageStatus.IN_PROGRESS, model_id=session.model_id,
            )  # fmt: skip
            await store.add_message(reply)
    async with opened(sql_url) as store:
        assert await titles(store, org, "legacy") == ["Legacy archive"]
        assert await titles(store, org, "older message") == ["Legacy archive"]
        assert await titles(store, org, "written") == []  # still in progress: not indexed
        await store.recover_interrupted(values.at(10))  # as the service does on start
        assert await titles(store, org, "half written") == ["Legacy archive"]
    check_index(sql_url)


# -- any text: a clean query or InvalidField, and the same matches as in memory -------------------
WORDS = (
    "vector Vector VECTORS data database databases café CAFE naïve über øre οδός ΟΔΟΣ 東京 "
    "42 3.14 foo-bar a and"
).split()
JUNK = "\"*-+:^()&|!<>'\\ \x00\t\u00a0\u0301\u200b🚀中ßİΣς_%;NEAR"


def _text(rng: random.Random, most: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, most)))


def _query(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return _text(rng, 3)
    if kind == 1:
        return f'"{_text(rng, 3)}"' + rng.choice(["", "*"])
    if kind == 2:
        return rng.choice(WORDS)[:3] + "*"
    if kind == 3:  # anything at all: quotes, operators, NUL, marks, emoji...
        return "".join(rng.choice(JUNK + "ab") for _ in range(rng.randint(0, 20)))
    return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randint(1, 12)))


def _unordered(hits: Any) -> list[Any]:
    """What does not depend on the engine's relevance: title matches first, then the rest;
    each conversation's count, its first matching messages and whether a message is best."""
    found = [
        (h.title_matches, str(h.conversation.id), h.message_count, h.message_ids, h.best is None)
        for h in hits
    ]
    assert [f[0] for f in found] == sorted((f[0] for f in found), reverse=True)
    return sorted(found, key=lambda f: (not f[0], f[1]))


async def test_any_text_is_refused_or_finds_in_sql_what_memory_finds(
    sql_url: str, values: Any
) -> None:
    rng = random.Random(20261126)  # one corpus and set of queries, the same every run
    memory = InMemoryStore()
    async with opened(sql_url) as sql:
        org = await new_org(sql, values)
        await memory.add_org(org)
        neighbour = await new_org(sql, values)  # says the same, in SQL only
        corpora = [Corpus(sql, values, org, memory), Corpus(sql, values, neighbour)]
        for n in range(24):
            title = f"{_text(rng, 3)} {n}"
            texts = [_text(rng, 8) for _ in range(rng.randrange(4))]
            for corpus in corpora:
                await corpus.conversation(title, *texts, archived=n % 3 == 0)
        refused = compared = 0
        for _ in range(400):
            q = _query(rng)
            try:
                parsed = parse_query(q)
            except InvalidField as error:
                assert error.field == "q"
                refused += 1
                continue
            is_archived = rng.choice([None, True, False])
            answers = [
                await store.search_conversations(
                    org.id, parsed, is_archived=is_archived, limit=100, offset=0
                )
                for store in (memory, sql)
            ]
            assert _unordered(answers[0].items) == _unordered(answers[1].items), (q, str(parsed))
            compared += 1
        assert refused > 20 and compared > 300


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=60) | st.text(alphabet=JUNK + "ab", max_size=30))
def test_any_text_is_refused_or_valid_syntax_for_fts5_and_tsquery(
    text: str, postgres_url: str
) -> None:
    try:
        parsed = parse_query(text)
    except InvalidField as refused:
        assert refused.field == "q"
        return
    with sqlite3.connect(":memory:") as lite:
        lite.execute(f"CREATE VIRTUAL TABLE t USING fts5(c, content='', tokenize='{TOKENIZER}')")
        lite.execute("SELECT rowid FROM t WHERE t MATCH ?", (match_text(SQLITE, parsed),))
    postgres_server.query(
        postgres_url, "SELECT to_tsquery('simple', $1)", match_text(POSTGRESQL, parsed)
    )
