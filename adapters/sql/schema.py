"""The database schema as numbered migrations, and the connection settings.

Each step of MIGRATIONS runs once, in its own transaction, and records its number in
`schema_version`; opening a database that is already current changes nothing. A database
written by newer code (a version above the last step known here) is refused.

The text is one for SQLite and PostgreSQL but for the words in braces, which each dialect
fills in (dialects.SCHEMA_WORDS): `{serial_key}`, `{double}`; a step that has nothing in
common between the two (the search index, search_schema.py) is a dict of each dialect's
statements. A statement marked search_schema.Slow may run past the statement timeout.

SQLite runs in WAL mode with synchronous=NORMAL: a committed transaction survives the
process crashing or being killed, but a power loss or OS crash can lose the last few
transactions (never corrupting the file). That is the trade taken for commit speed.
PostgreSQL keeps its server's own settings (by default a commit is on disk when it returns).
"""

from __future__ import annotations

from databases.core import Connection

from conversation_service.adapters.sql.dialects import POSTGRESQL, SCHEMA_WORDS, SQLITE
from conversation_service.adapters.sql.search_schema import SEARCH_INDEX, Slow
from conversation_service.domain.model import MessageStatus
from conversation_service.domain.session_machine import SessionState
from conversation_service.ports.storage import StorageUnavailable


class SchemaTooNew(StorageUnavailable):
    """The database was written by a newer version of the service than this one."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the database schema is version {found} but this service only knows up to "
            f"version {known}; run a newer service version or restore an older database"
        )
        self.found = found
        self.known = known


# Recovery after a restart looks only for these, so they get partial indexes; the query
# must repeat the literal value for SQLite to use such an index.
IN_PROGRESS = MessageStatus.IN_PROGRESS.value
RESPONDING = SessionState.RESPONDING.value

# Timestamps are TEXT in the format of adapters.sql.rows; ids are canonical UUID TEXT.
# `{serial_key}`: an ever-growing integer key gives rows their insertion order, whatever their
# timestamps. `{double}`: an 8-byte float.
Step = tuple[str, ...] | dict[str, tuple[str, ...]]  # one text, or each dialect's own

MIGRATIONS: tuple[Step, ...] = (
    (
        """CREATE TABLE orgs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES orgs (id),
            role TEXT NOT NULL,
            token_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT NULL,
            expires_at TEXT NULL
        )""",
        "CREATE UNIQUE INDEX tokens_by_hash ON tokens (token_hash)",
        "CREATE INDEX tokens_by_org ON tokens (org_id, created_at, id)",
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES orgs (id),
            title TEXT NOT NULL,
            is_archived BOOLEAN NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE INDEX conversations_by_org
            ON conversations (org_id, updated_at DESC, created_at DESC, id DESC)""",
        """CREATE INDEX conversations_by_org_archived
            ON conversations (org_id, is_archived, updated_at DESC, created_at DESC, id DESC)""",
        """CREATE TABLE chat_sessions (
            seq {serial_key},
            id TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL REFERENCES orgs (id),
            conversation_id TEXT NOT NULL REFERENCES conversations (id),
            model_id TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            system_prompt TEXT NULL,
            temperature {double} NULL,
            top_p {double} NULL,
            max_tokens INTEGER NULL,
            context TEXT NOT NULL
        )""",
        "CREATE INDEX chat_sessions_by_conversation ON chat_sessions (conversation_id, seq)",
        f"""CREATE INDEX chat_sessions_responding ON chat_sessions (status)
            WHERE status = '{RESPONDING}'""",
        """CREATE TABLE messages (
            seq {serial_key},
            id TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL REFERENCES orgs (id),
            conversation_id TEXT NOT NULL REFERENCES conversations (id),
            chat_session_id TEXT NOT NULL REFERENCES chat_sessions (id),
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            status TEXT NOT NULL,
            model_id TEXT NULL,
            finish_reason TEXT NULL,
            prompt_tokens INTEGER NULL,
            completion_tokens INTEGER NULL,
            usage_estimated BOOLEAN NULL,
            error_code TEXT NULL,
            error_message TEXT NULL,
            first_token_ms INTEGER NULL,
            total_ms INTEGER NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX messages_by_conversation ON messages (conversation_id, seq)",
        "CREATE INDEX messages_by_session ON messages (chat_session_id, seq)",
        # Usage reports: an organisation's replies over a period of time.
        "CREATE INDEX messages_by_org_time ON messages (org_id, created_at)",
        f"""CREATE INDEX messages_in_progress ON messages (status)
            WHERE status = '{IN_PROGRESS}'""",
        """CREATE TABLE idempotency_keys (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            done BOOLEAN NOT NULL,
            status INTEGER NULL,
            body TEXT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (scope, key)
        )""",
        "CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at)",
        """CREATE TABLE org_models (
            seq {serial_key},
            id TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL REFERENCES orgs (id),
            entry TEXT NOT NULL,
            encrypted_api_key TEXT NULL,
            created_at TEXT NOT NULL
        )""",
    ),
    (
        # Sessions are written only over the version before theirs (domain.model.ChatSession).
        "ALTER TABLE chat_sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
        # A reply that stopped unfinished ends with finish_reason "error", as its stream said;
        # version 1 stored "interrupted", and no error code for a reply recovered at start.
        """UPDATE messages SET finish_reason = 'error',
            error_code = COALESCE(error_code, 'interrupted'),
            error_message = COALESCE(error_message, 'the service stopped while writing this reply')
            WHERE status = 'incomplete'""",
    ),
    (
        # Several instances on one PostgreSQL (adapters/sql/cluster.py): who is alive, which
        # instance runs which session, the commands they send each other, and the counters
        # of the limits they share.
        """CREATE TABLE instances (
            id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            seen_at TEXT NOT NULL
        )""",
        """CREATE TABLE session_leases (
            session_id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            instance_id TEXT NOT NULL,
            taken_at TEXT NOT NULL
        )""",
        "CREATE INDEX session_leases_by_instance ON session_leases (instance_id)",
        """CREATE TABLE session_commands (
            id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            org_id TEXT NOT NULL,
            recipient TEXT NOT NULL,
            sender TEXT NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            answer TEXT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX session_commands_by_age ON session_commands (created_at)",
        """CREATE TABLE rate_windows (
            key TEXT NOT NULL,
            window_start BIGINT NOT NULL,
            hits INTEGER NOT NULL,
            PRIMARY KEY (key, window_start)
        )""",
        """CREATE TABLE stream_slots (
            org_id TEXT NOT NULL,
            instance_id TEXT NOT NULL,
            held INTEGER NOT NULL,
            PRIMARY KEY (org_id, instance_id)
        )""",
        # One reply at a time per session, whichever instance writes it: enforced here. It
        # also finds the replies in progress, as the index it replaces did.
        f"""CREATE UNIQUE INDEX one_reply_per_session ON messages (chat_session_id)
            WHERE status = '{IN_PROGRESS}'""",
        "DROP INDEX messages_in_progress",
    ),
    # Conversation search: the full-text index of titles and messages, kept by the database.
    SEARCH_INDEX,
    # Branches (domain/branches.py): each message follows its parent in its session, and a
    # session's current branch ends at its head. Until now every session was one path: a
    # message follows the one added before it in its session, and the head is the last.
    (
        "ALTER TABLE messages ADD COLUMN parent_id TEXT NULL",
        "ALTER TABLE chat_sessions ADD COLUMN head_id TEXT NULL",
        Slow(
            """UPDATE messages SET parent_id = (
                SELECT before.id FROM messages AS before
                WHERE before.chat_session_id = messages.chat_session_id
                AND before.seq < messages.seq ORDER BY before.seq DESC LIMIT 1)"""
        ),
        Slow(
            """UPDATE chat_sessions SET head_id = (
                SELECT last.id FROM messages AS last
                WHERE last.chat_session_id = chat_sessions.id ORDER BY last.seq DESC LIMIT 1)"""
        ),
        # A message's children (and siblings), oldest first: the newest child of a message,
        # the alternatives at a place, and the order among them.
        Slow("CREATE INDEX messages_by_parent ON messages (chat_session_id, parent_id, seq)"),
    ),
    (
        # Conversations people keep (issue 12). A conversation created without a title keeps
        # '' in `title` until it gets one (rows.py reads it as None): the column stays NOT NULL,
        # which SQLite could only drop by rebuilding the table; no title given is ever ''.
        """CREATE TABLE message_feedback (
            message_id TEXT PRIMARY KEY REFERENCES messages (id),
            org_id TEXT NOT NULL REFERENCES orgs (id),
            conversation_id TEXT NOT NULL REFERENCES conversations (id),
            rating TEXT NOT NULL,
            comment TEXT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        # Deleting a conversation deletes its feedback; usage reports count an org's ratings.
        "CREATE INDEX message_feedback_by_conversation ON message_feedback (conversation_id)",
        "CREATE INDEX message_feedback_by_org ON message_feedback (org_id)",
        # An export walks an organisation's conversations oldest first.
        "CREATE INDEX conversations_by_org_created ON conversations (org_id, created_at, id)",
    ),
)

CURRENT_VERSION = len(MIGRATIONS)

_SQLITE_SETTINGS = (
    "PRAGMA journal_mode = WAL",  # stored in the file; readers never block the writer
    "PRAGMA synchronous = NORMAL",  # see the module docstring for what this risks
    "PRAGMA busy_timeout = 5000",  # wait for another process's lock instead of failing
    "PRAGMA foreign_keys = ON",  # off by default in SQLite, per connection
    # Deleted rows (a deleted conversation's messages) are overwritten in the pages they
    # leave, where that costs no extra I/O, rather than left readable in free space.
    "PRAGMA secure_delete = FAST",
)


# A Slow statement's limit on PostgreSQL (its driver's timeout; SQLite has none): the one that
# computes every stored message's search vector took 15 s per 100,000 messages here, far past
# the usual 30 s on a big database.
SLOW_STATEMENT_TIMEOUT = 24 * 3600.0

# Held on PostgreSQL while migrating: instances that start together migrate one at a time.
# Any fixed number; this one spells "conv" in ASCII.
_MIGRATION_LOCK = 0x636F6E76


async def prepare_database(connection: Connection, dialect: str) -> None:
    """Apply the connection settings, then every migration the database lacks."""
    if dialect not in SCHEMA_WORDS:
        raise StorageUnavailable(f"unsupported database dialect {dialect!r}")
    if dialect == SQLITE:
        for pragma in _SQLITE_SETTINGS:
            await connection.execute(pragma)
    if dialect == POSTGRESQL:
        # Released when the connection closes, so a failure below cannot leave it held.
        await connection.execute(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
    await _migrate(connection, dialect)
    if dialect == POSTGRESQL:
        await connection.execute(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")


async def _migrate(connection: Connection, dialect: str) -> None:
    words = SCHEMA_WORDS[dialect]
    await connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    for version in range(1, CURRENT_VERSION + 1):
        async with connection.transaction():
            # Re-read inside the transaction: another process may have migrated meanwhile.
            found = await connection.fetch_val("SELECT MAX(version) FROM schema_version") or 0
            if found > CURRENT_VERSION:
                raise SchemaTooNew(found, CURRENT_VERSION)
            if found >= version:
                continue
            step = MIGRATIONS[version - 1]
            for statement in step[dialect] if isinstance(step, dict) else step:
                text = str(statement).format(**words)  # a plain str (asyncpg checks)
                if isinstance(statement, Slow) and dialect == POSTGRESQL:
                    # Past `databases`, to give this one statement its own timeout.
                    await connection.raw_connection.execute(text, timeout=SLOW_STATEMENT_TIMEOUT)
                else:
                    await connection.execute(text)
            await connection.execute(
                "INSERT INTO schema_version (version) VALUES (:version)", {"version": version}
            )
