"""The full-text index behind conversation search: SQLite FTS5, or PostgreSQL tsvectors.

Kept in step by the database itself, never by the store's code: SQLite by triggers on the
messages and conversations tables, PostgreSQL by generated columns. So every write reaches
the index, whichever code makes it (a reply's end, recovery after a crash, a title renamed,
a conversation or message deleted, statements added later) and in its own transaction.

What is indexed: every conversation's title, and every message's content but for replies
still being written. A streaming reply is flushed every 0.5 s; indexing each flush would
re-read its whole growing text every time, in the storage actor's only connection. It is
indexed once, when it ends (completed, cancelled, failed, or marked incomplete by recovery).

Words (domain/search.py) are runs of letters and digits, compared without case and without
the accents of Latin letters:
- SQLite: FTS5's `unicode61` tokenizer with `remove_diacritics 2`, which is that rule.
- PostgreSQL: its text-search parser keeps e-mail addresses, URLs, paths, decimals and
  hyphenated words whole, and in a database whose locale is C it neither lower-cases letters
  beyond ASCII nor splits words at punctuation beyond ASCII. So the text goes through
  `search_words()` first: accents of Latin letters off (NFD, their combining marks dropped),
  lower case (ASCII, Latin, Greek and Cyrillic capitals by a fixed table, whatever the
  locale), punctuation, symbols and emoji as spaces; then `to_tsvector('simple', ...)`
  (no stemming, no stop words), so that the parser meets only words and spaces.

The search SQL is in search_queries.py.
"""

from __future__ import annotations

from conversation_service.adapters.sql.dialects import POSTGRESQL, SQLITE
from conversation_service.domain.model import MessageStatus

IN_PROGRESS = MessageStatus.IN_PROGRESS.value
TOKENIZER = "unicode61 remove_diacritics 2"


class Slow(str):
    """A migration statement that may take longer than a statement may (it reads or
    rewrites every row of a table): run without the usual statement timeout."""

    __slots__ = ()


# -- SQLite: two contentless FTS5 tables (the index only; the text stays in its table) ----------
# An FTS5 row's rowid is its organisation's key times 2^40 plus the row's own integer key, so
# that each organisation's rows are one range of rowids, which FTS5 reads alone (it seeks
# within its lists by rowid): a search never reads another organisation's rows, however many.
# The row's own key: a message's `seq` (an INTEGER PRIMARY KEY, stable under VACUUM);
# conversations have none (a plain rowid can change under VACUUM), so each gets one in
# conversation_search_rows, and organisations theirs in search_orgs.
# A contentless table forgets what it indexed: a row leaves it through the 'delete' command
# with the very values it was indexed with, which the triggers read from `old`.
ORG_SPAN = 2**40  # rowids per organisation: 2^40 messages (and conversations) each
_KEY = "(SELECT key FROM search_orgs WHERE org_id = {row}.org_id) * " + str(ORG_SPAN)

_SQLITE = (
    """CREATE TABLE search_orgs (
        key INTEGER PRIMARY KEY,
        org_id TEXT NOT NULL UNIQUE
    )""",
    "INSERT INTO search_orgs (org_id) SELECT id FROM orgs ORDER BY created_at, id",
    """CREATE TRIGGER search_orgs_insert AFTER INSERT ON orgs BEGIN
            INSERT INTO search_orgs (org_id) VALUES (new.id);
        END""",
    f"""CREATE VIRTUAL TABLE message_search USING fts5(
        content, content = '', tokenize = '{TOKENIZER}')""",
    f"""INSERT INTO message_search (rowid, content)
        SELECT {_KEY.format(row="messages")} + seq, content FROM messages
        WHERE status <> '{IN_PROGRESS}'""",
    f"""CREATE TRIGGER message_search_insert AFTER INSERT ON messages
        WHEN new.status <> '{IN_PROGRESS}' BEGIN
            INSERT INTO message_search (rowid, content)
                VALUES ({_KEY.format(row="new")} + new.seq, new.content);
        END""",
    # A streaming reply's flushes (in progress to in progress) do nothing here.
    f"""CREATE TRIGGER message_search_update AFTER UPDATE OF content, status ON messages
        WHEN old.status <> '{IN_PROGRESS}' OR new.status <> '{IN_PROGRESS}' BEGIN
            INSERT INTO message_search (message_search, rowid, content)
                SELECT 'delete', {_KEY.format(row="old")} + old.seq, old.content
                WHERE old.status <> '{IN_PROGRESS}';
            INSERT INTO message_search (rowid, content)
                SELECT {_KEY.format(row="new")} + new.seq, new.content
                WHERE new.status <> '{IN_PROGRESS}';
        END""",
    f"""CREATE TRIGGER message_search_delete AFTER DELETE ON messages
        WHEN old.status <> '{IN_PROGRESS}' BEGIN
            INSERT INTO message_search (message_search, rowid, content)
                VALUES ('delete', {_KEY.format(row="old")} + old.seq, old.content);
        END""",
    """CREATE TABLE conversation_search_rows (
        row INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL UNIQUE
    )""",
    f"""CREATE VIRTUAL TABLE conversation_search USING fts5(
        title, content = '', tokenize = '{TOKENIZER}')""",
    "INSERT INTO conversation_search_rows (conversation_id) SELECT id FROM conversations",
    f"""INSERT INTO conversation_search (rowid, title)
        SELECT {_KEY.format(row="c")} + r.row, c.title FROM conversation_search_rows AS r
        JOIN conversations AS c ON c.id = r.conversation_id""",
    f"""CREATE TRIGGER conversation_search_insert AFTER INSERT ON conversations BEGIN
            INSERT INTO conversation_search_rows (conversation_id) VALUES (new.id);
            INSERT INTO conversation_search (rowid, title)
                SELECT {_KEY.format(row="new")} + row, new.title
                FROM conversation_search_rows WHERE conversation_id = new.id;
        END""",
    f"""CREATE TRIGGER conversation_search_update AFTER UPDATE OF title ON conversations BEGIN
            INSERT INTO conversation_search (conversation_search, rowid, title)
                SELECT 'delete', {_KEY.format(row="old")} + row, old.title
                FROM conversation_search_rows WHERE conversation_id = old.id;
            INSERT INTO conversation_search (rowid, title)
                SELECT {_KEY.format(row="new")} + row, new.title
                FROM conversation_search_rows WHERE conversation_id = new.id;
        END""",
    f"""CREATE TRIGGER conversation_search_delete AFTER DELETE ON conversations BEGIN
            INSERT INTO conversation_search (conversation_search, rowid, title)
                SELECT 'delete', {_KEY.format(row="old")} + row, old.title
                FROM conversation_search_rows WHERE conversation_id = old.id;
            DELETE FROM conversation_search_rows WHERE conversation_id = old.id;
        END""",
)

# -- PostgreSQL: generated tsvector columns with GIN indexes --------------------------------------
# Punctuation, symbols and emoji: every code point of these ranges is neither a letter nor a
# digit (Unicode 14). Explicit ranges, so that no locale changes what they hold.
_SEPARATORS = (
    r"\u0001-\u002f\u003a-\u0040\u005b-\u0060\u007b-\u00a9\u00ab-\u00b1\u00b4\u00b6-\u00b8"
    r"\u00bb\u00bf\u00d7\u00f7\u2000-\u206f\u2190-\u245f\u249c-\u24e9\u2500-\u2775"
    r"\u2794-\u2bff\u2e00-\u2e2e\u2e30-\u2e7f\u3000-\u3004\u3008-\u3020\u302a-\u3030"
    r"\u3036-\u3037\u303d-\u303f\ufe10-\ufe1f\ufe30-\ufe6f\uff00-\uff0f\uff1a-\uff20"
    r"\uff3b-\uff40\uff5b-\uff65\U0001f000-\U0001f0ff\U0001f10d-\U0001faff"
)
# Capitals lower() leaves alone in a C locale once accents are off (Latin ones are then ASCII
# or in this table), and the final sigma: their lower case (domain.search.fold does the same).
_CAPITALS = (
    "ÆÐØÞĐĦĲĿŁŊŒŦẞ"
    + "".join(chr(c) for c in range(0x391, 0x3AA) if c != 0x3A2)
    + "ς"
    + "".join(chr(c) for c in range(0x400, 0x430))
)
_LOWER = (
    "æðøþđħĳŀłŋœŧß"
    + "".join(chr(c) for c in range(0x3B1, 0x3CA) if c != 0x3C2)
    + "σ"
    + "".join(chr(c) for c in range(0x450, 0x460))
    + "".join(chr(c) for c in range(0x430, 0x450))
)
assert len(_CAPITALS) == len(_LOWER)

# Changing this function later does not change what the generated columns hold: a
# migration that replaces it must also recompute them (UPDATE ... SET content = content).
_SEARCH_WORDS = f"""CREATE FUNCTION search_words(text TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT regexp_replace(
        normalize(
            translate(
                lower(regexp_replace(normalize(text, NFD), '([A-Za-z])[\\u0300-\\u036f]+', '\\1', 'g')),
                '{_CAPITALS}', '{_LOWER}'),
            NFC),
        '[{_SEPARATORS}]+', ' ', 'g') $$"""  # noqa: E501

_POSTGRESQL = (
    _SEARCH_WORDS,
    Slow(
        f"""ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
            CASE WHEN status = '{IN_PROGRESS}' THEN NULL
            ELSE to_tsvector('simple'::regconfig, search_words(content)) END) STORED"""
    ),
    Slow("CREATE INDEX messages_search ON messages USING GIN (search_vector)"),
    Slow(
        """ALTER TABLE conversations ADD COLUMN title_vector tsvector GENERATED ALWAYS AS (
            to_tsvector('simple'::regconfig, search_words(title))) STORED"""
    ),
    Slow("CREATE INDEX conversations_search ON conversations USING GIN (title_vector)"),
)

SEARCH_INDEX: dict[str, tuple[str, ...]] = {SQLITE: _SQLITE, POSTGRESQL: _POSTGRESQL}
"""The migration that adds the index, per dialect."""
