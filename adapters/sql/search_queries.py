"""The search SQL: one statement per search, on the index of search_schema.py.

Only the two first steps differ between the dialects: which messages and titles match, and
each message's relevance, which is the engine's own and higher for a better match:
- SQLite: `-bm25()` of FTS5. It weighs a term by its rarity, and a message's length against
  the average, over the whole index: every organisation's messages.
- PostgreSQL: `ts_rank(vector, query, 16)`: how often the terms occur in the message, divided
  by 1 + the log of its number of distinct words (of ts_rank's normalisations, the one whose
  order agreed most often with bm25's on sample messages). Nothing outside the message counts.
What follows is one text: a conversation's relevance is its best message's (0 if only its
title matches); conversations whose title matches come first, then the most relevant, then
the newest activity (updated_at, created_at, id: as the list). For each conversation of the
page, its matching messages are counted, the first MATCHED_IDS listed by message order, and
the best one (the most relevant; the earliest of equals) read for its snippet.

A query goes to the engine in the engine's own syntax, written from its words alone (runs
of letters and digits, so never a quote, an operator or a NUL): an FTS5 string per term,
`"vector databases"` with `*` after it for a prefix; a tsquery of quoted lexemes,
`'vector' <-> 'databas':*`, terms joined by `&`. No input reaches either as syntax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from conversation_service.adapters.sql.dialects import POSTGRESQL, SQLITE
from conversation_service.adapters.sql.queries import CONVERSATION_COLUMNS
from conversation_service.adapters.sql.rows import from_row
from conversation_service.adapters.sql.search_schema import ORG_SPAN
from conversation_service.domain.model import Conversation, Page
from conversation_service.domain.search import MATCHED_IDS, SearchQuery, Term
from conversation_service.ports.storage import BestMatch, SearchHit

# SQLite: the organisation's range of rowids only (search_schema.py), then its rows; the
# FTS5 table is the outer loop (CROSS JOIN), never a lookup per message of the organisation.
_LOW = "(SELECT low FROM org_rows)"

_MATCHES = {
    SQLITE: f"""org_rows AS MATERIALIZED (
        SELECT key * {ORG_SPAN} AS low FROM search_orgs WHERE org_id = :org_id
    ),
    message_hits AS MATERIALIZED (
        SELECT m.conversation_id AS conversation_id, m.id AS id, m.seq AS seq,
            -bm25(message_search) AS score
        FROM message_search
        CROSS JOIN messages AS m ON m.seq = message_search.rowid - {_LOW}
        WHERE message_search MATCH :match
            AND message_search.rowid BETWEEN {_LOW} AND {_LOW} + {ORG_SPAN - 1}
            AND m.org_id = :org_id
    ),
    title_hits AS MATERIALIZED (
        SELECT r.conversation_id AS conversation_id
        FROM conversation_search
        CROSS JOIN conversation_search_rows AS r ON r.row = conversation_search.rowid - {_LOW}
        WHERE conversation_search MATCH :match
            AND conversation_search.rowid BETWEEN {_LOW} AND {_LOW} + {ORG_SPAN - 1}
    )""",
    POSTGRESQL: """message_hits AS MATERIALIZED (
        SELECT m.conversation_id AS conversation_id, m.id AS id, m.seq AS seq,
            ts_rank(m.search_vector, to_tsquery('simple', :match), 16) AS score
        FROM messages AS m
        WHERE m.search_vector @@ to_tsquery('simple', :match) AND m.org_id = :org_id
    ),
    title_hits AS MATERIALIZED (
        SELECT c.id AS conversation_id FROM conversations AS c
        WHERE c.title_vector @@ to_tsquery('simple', :match) AND c.org_id = :org_id
    )""",
}

_RANKED = "title_matches DESC, score DESC, updated_at DESC, created_at DESC, id DESC"
_CONVERSATION = ", ".join(f"c.{column}" for column in CONVERSATION_COLUMNS)
_PAGE_COLUMNS = ", ".join(f"page.{column}" for column in CONVERSATION_COLUMNS)

_TAIL = f"""per_conversation AS (
        SELECT conversation_id, COUNT(*) AS message_count, MAX(score) AS score
        FROM message_hits GROUP BY conversation_id
    ),
    candidates AS (
        SELECT conversation_id, MAX(title_matches) AS title_matches,
            MAX(message_count) AS message_count, MAX(score) AS score
        FROM (
            SELECT conversation_id, 0 AS title_matches, message_count, score
            FROM per_conversation
            UNION ALL
            SELECT conversation_id, 1, 0, 0 FROM title_hits
        ) AS found
        GROUP BY conversation_id
    ),
    page AS MATERIALIZED (
        SELECT {_CONVERSATION}, k.title_matches, k.message_count, k.score
        FROM candidates AS k
        JOIN conversations AS c ON c.id = k.conversation_id
        WHERE c.org_id = :org_id {{archived}}
        ORDER BY {_RANKED}
        LIMIT :limit OFFSET :offset
    ),
    picked AS (
        SELECT h.conversation_id, h.id, h.seq,
            ROW_NUMBER() OVER (PARTITION BY h.conversation_id ORDER BY h.seq) AS nth,
            ROW_NUMBER() OVER (
                PARTITION BY h.conversation_id ORDER BY h.score DESC, h.seq) AS best
        FROM message_hits AS h WHERE h.conversation_id IN (SELECT id FROM page)
    )
SELECT {_PAGE_COLUMNS}, page.title_matches, page.message_count,
    picked.id AS message_id, picked.nth AS nth, m.content AS best_content
FROM page
LEFT JOIN picked ON picked.conversation_id = page.id
    AND (picked.nth <= :matched_ids OR picked.best = 1)
LEFT JOIN messages AS m ON picked.best = 1 AND m.id = picked.id
ORDER BY {", ".join(f"page.{key}" for key in _RANKED.split(", "))}, picked.seq"""


def _statement(dialect: str, archived: bool) -> str:
    tail = _TAIL.format(archived="AND c.is_archived = :is_archived" if archived else "")
    return f"WITH {_MATCHES[dialect]},\n    {tail}"


SEARCH: dict[tuple[str, bool], str] = {
    (dialect, archived): _statement(dialect, archived)
    for dialect in (SQLITE, POSTGRESQL)
    for archived in (False, True)
}
"""The search statement, by dialect and whether it filters on is_archived."""


def match_text(dialect: str, query: SearchQuery) -> str:
    """The query in the engine's syntax: FTS5's (SQLite) or a tsquery (PostgreSQL)."""
    if dialect == POSTGRESQL:
        return " & ".join(f"({_tsquery(term)})" for term in query.terms)
    return " ".join(_fts5(term) for term in query.terms)


def _fts5(term: Term) -> str:
    # FTS5 folds case and accents itself: the words go as typed, one string per term.
    words = " ".join(word.replace('"', '""') for word in term.words)
    return f'"{words}"' + ("*" if term.prefix else "")


def _tsquery(term: Term) -> str:
    # Folded as search_words() folds the stored text; the parser meets letters and digits.
    lexemes = [f"'{_quoted(word)}'" for word in term.folded]
    if term.prefix:
        lexemes[-1] += ":*"
    return " <-> ".join(lexemes)


def _quoted(word: str) -> str:
    return word.replace("\\", "\\\\").replace("'", "''")


def hits_from_rows(rows: Sequence[dict[str, Any]], limit: int, offset: int) -> Page[SearchHit]:
    """The page the statement's rows (one or more per conversation, in order) hold; it
    was given `limit + 1` to tell whether more follow."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["id"], []).append(row)
    hits = [_hit(found) for found in grouped.values()]
    return Page(items=tuple(hits[:limit]), limit=limit, offset=offset, has_more=len(hits) > limit)


def _hit(rows: list[dict[str, Any]]) -> SearchHit:
    first = rows[0]
    conversation = from_row(
        Conversation, {column: first[column] for column in CONVERSATION_COLUMNS}
    )
    best = next((row for row in rows if row["best_content"] is not None), None)
    return SearchHit(
        conversation=conversation,
        title_matches=bool(first["title_matches"]),
        message_count=int(first["message_count"]),
        message_ids=tuple(
            UUID(row["message_id"])
            for row in rows
            if row["message_id"] and row["nth"] <= MATCHED_IDS
        ),
        best=None
        if best is None
        else BestMatch(message_id=UUID(best["message_id"]), content=best["best_content"]),
    )
