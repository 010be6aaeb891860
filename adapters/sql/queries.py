"""The SQL the store runs: plain text with named `:parameters`, portable to PostgreSQL.

Every listing has an index that serves both its filter and its order (see schema.py).
Message and session order is the insertion order of the `seq` column, never a timestamp.
"""

from __future__ import annotations

from conversation_service.adapters.sql.schema import IN_PROGRESS, RESPONDING

ORG_COLUMNS = ("id", "name", "created_at")
TOKEN_COLUMNS = ("id", "org_id", "role", "token_hash", "created_at", "expires_at")
TOKEN_INFO_COLUMNS = ("id", "org_id", "role", "created_at", "expires_at", "revoked_at")
CONVERSATION_COLUMNS = ("id", "org_id", "title", "is_archived", "created_at", "updated_at")
SESSION_COLUMNS = (
    "id", "org_id", "conversation_id", "model_id", "status", "created_at", "updated_at",
    "system_prompt", "temperature", "top_p", "max_tokens", "context", "version", "head_id",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "id", "org_id", "conversation_id", "chat_session_id", "role", "content", "status",
    "model_id", "finish_reason", "prompt_tokens", "completion_tokens", "usage_estimated",
    "error_code", "error_message", "first_token_ms", "total_ms", "created_at", "updated_at",
    "parent_id",
)  # fmt: skip
MESSAGE_UPDATE_COLUMNS = (
    "content", "status", "finish_reason", "prompt_tokens", "completion_tokens",
    "usage_estimated", "error_code", "error_message", "first_token_ms", "total_ms", "updated_at",
)  # fmt: skip


def _insert(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(columns)
    params = ", ".join(f":{column}" for column in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({params})"


def _select(table: str, columns: tuple[str, ...], rest: str) -> str:
    return f"SELECT {', '.join(columns)} FROM {table} {rest}"


# -- organisations and tokens ----------------------------------------------------------------
INSERT_ORG = _insert("orgs", ORG_COLUMNS)
GET_ORG = _select("orgs", ORG_COLUMNS, "WHERE id = :id")
COUNT_ORGS = "SELECT COUNT(*) FROM orgs"
INSERT_TOKEN = _insert("tokens", TOKEN_COLUMNS)
FIND_TOKEN = (
    f"SELECT {', '.join(TOKEN_INFO_COLUMNS)} FROM tokens "
    "WHERE token_hash = :token_hash AND revoked_at IS NULL "
    "AND (expires_at IS NULL OR expires_at > :at)"
)
LIST_TOKENS = _select(
    "tokens", TOKEN_INFO_COLUMNS, "WHERE org_id = :org_id ORDER BY created_at, id"
)
GET_TOKEN = _select("tokens", TOKEN_INFO_COLUMNS, "WHERE id = :id")
REVOKE_TOKEN = "UPDATE tokens SET revoked_at = :at WHERE id = :id AND revoked_at IS NULL"

# -- conversations ---------------------------------------------------------------------------
INSERT_CONVERSATION = _insert("conversations", CONVERSATION_COLUMNS)
GET_CONVERSATION = _select(
    "conversations", CONVERSATION_COLUMNS, "WHERE id = :id AND org_id = :org_id"
)
_NEWEST_FIRST = "ORDER BY updated_at DESC, created_at DESC, id DESC LIMIT :limit OFFSET :offset"
LIST_CONVERSATIONS = _select(
    "conversations", CONVERSATION_COLUMNS, f"WHERE org_id = :org_id {_NEWEST_FIRST}"
)
LIST_CONVERSATIONS_BY_ARCHIVED = _select(
    "conversations",
    CONVERSATION_COLUMNS,
    f"WHERE org_id = :org_id AND is_archived = :is_archived {_NEWEST_FIRST}",
)
# updated_at only moves forward, like Conversation.touched.
TOUCH_CONVERSATION = "UPDATE conversations SET updated_at = :at WHERE id = :id AND updated_at < :at"

# -- chat sessions ---------------------------------------------------------------------------
INSERT_SESSION = _insert("chat_sessions", SESSION_COLUMNS)
# Written only over the version before it; RETURNING tells whether a row was (rowcount is
# not portable across drivers). SQLite has RETURNING from 3.35, PostgreSQL always.
UPDATE_SESSION = (
    "UPDATE chat_sessions SET status = :status, head_id = :head_id, updated_at = :updated_at, "
    "version = :version "
    "WHERE id = :id AND org_id = :org_id AND version = :version - 1 RETURNING version"
)
SESSION_VERSION = "SELECT version FROM chat_sessions WHERE id = :id AND org_id = :org_id"
GET_SESSION = _select("chat_sessions", SESSION_COLUMNS, "WHERE id = :id AND org_id = :org_id")
LIST_SESSIONS = _select(
    "chat_sessions",
    SESSION_COLUMNS,
    "WHERE conversation_id = :conversation_id AND org_id = :org_id ORDER BY seq",
)

# -- messages --------------------------------------------------------------------------------
INSERT_MESSAGE = _insert("messages", MESSAGE_COLUMNS)
UPDATE_MESSAGE = (
    "UPDATE messages SET "
    + ", ".join(f"{column} = :{column}" for column in MESSAGE_UPDATE_COLUMNS)
    + f" WHERE id = :id AND org_id = :org_id AND status = '{IN_PROGRESS}' RETURNING id"
)
MESSAGE_STATUS = "SELECT status FROM messages WHERE id = :id AND org_id = :org_id"
GET_MESSAGE = _select("messages", MESSAGE_COLUMNS, "WHERE id = :id AND org_id = :org_id")
LIST_MESSAGES = _select(
    "messages",
    MESSAGE_COLUMNS,
    "WHERE conversation_id = :conversation_id AND org_id = :org_id "
    "ORDER BY seq LIMIT :limit OFFSET :offset",
)
CONVERSATION_MESSAGES = _select(
    "messages",
    MESSAGE_COLUMNS,
    "WHERE conversation_id = :conversation_id AND org_id = :org_id ORDER BY seq",
)
SESSION_MESSAGES = _select(
    "messages",
    MESSAGE_COLUMNS,
    "WHERE chat_session_id = :chat_session_id AND org_id = :org_id ORDER BY seq",
)
# -- branches (domain/branches.py) -----------------------------------------------------------
# Each message follows its parent_id within its session; the walks below are recursive CTEs
# over the unique index on id (up) and messages_by_parent (down, and siblings).
_M = ", ".join(f"m.{column}" for column in MESSAGE_COLUMNS)
# The ancestors of `seed`'s messages (id, parent_id), themselves included, up to the first.
_UP = (
    "up(id, parent_id) AS ({seed} "
    "UNION ALL SELECT m.id, m.parent_id FROM messages AS m JOIN up ON m.id = up.parent_id "
    "WHERE m.org_id = :org_id{stop})"
)
_ONE = "SELECT id, parent_id FROM messages WHERE id = {id} AND org_id = :org_id"
# The heads of the conversation's sessions but :leaf_session, and the message `{id}`. (Two
# starting points, each found by its own index: one condition that named both made SQLite
# read every message of the organisation.)
_HEADS_AND = (
    "SELECT m.id, m.parent_id FROM chat_sessions AS s JOIN messages AS m ON m.id = s.head_id "
    "WHERE s.conversation_id = :conversation_id AND s.org_id = :org_id "
    "AND s.id <> :leaf_session UNION ALL " + _ONE
)

# What a model is shown, newest first (reversed by the store), with how many there are in all:
# the branch up from :start (the parent of the message answered); never an empty reply or one
# still being written; no more than a prompt could hold.
_SHOWN = f"m.status <> '{IN_PROGRESS}' AND NOT (m.role = 'assistant' AND m.content = '')"
_HISTORY = (
    "WITH RECURSIVE {up} SELECT " + _M + ", COUNT(*) OVER () AS shown_count "
    "FROM messages AS m JOIN up ON m.id = up.id WHERE " + _SHOWN + "{more} "
    "ORDER BY m.seq DESC LIMIT :limit"
)
SESSION_HISTORY = _HISTORY.format(up=_UP.format(seed=_ONE.format(id=":start"), stop=""), more="")
# With a CONVERSATION context, the other sessions' current branches too (:leaf_session is the
# session answering), as far as they were added before the message answered (:before, its seq).
CONVERSATION_HISTORY = _HISTORY.format(
    up=_UP.format(seed=_HEADS_AND.format(id=":start"), stop=""),
    more=" AND (m.chat_session_id = :leaf_session OR m.seq < :before)",
)
# The message a regenerated reply answers again: where its branch goes up, and its place.
QUESTION = "SELECT parent_id, seq FROM messages WHERE id = :id AND org_id = :org_id"

# Whether :message_id is :leaf or above it (the walk stops there).
ON_BRANCH = (
    "WITH RECURSIVE "
    + _UP.format(seed=_ONE.format(id=":leaf"), stop=" AND up.id <> :message_id")
    + " SELECT COUNT(*) FROM up WHERE id = :message_id"
)
# The end of the branch down from :message_id through the newest child at each step.
NEWEST_LEAF = (
    "WITH RECURSIVE down(id, chat_session_id, depth) AS ("
    "SELECT id, chat_session_id, 0 FROM messages WHERE id = :message_id AND org_id = :org_id "
    "UNION ALL SELECT (SELECT c.id FROM messages AS c WHERE c.chat_session_id = "
    "down.chat_session_id AND c.parent_id = down.id ORDER BY c.seq DESC LIMIT 1), "
    "down.chat_session_id, down.depth + 1 FROM down WHERE down.id IS NOT NULL) "
    "SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1"
)


def _siblings(before: str) -> str:
    """How many messages share the page row's place (its session and parent), `before` it."""
    same = "s.chat_session_id = page.chat_session_id"
    return (
        f"CASE WHEN page.parent_id IS NULL "
        f"THEN (SELECT COUNT(*) FROM messages AS s WHERE {same} AND s.parent_id IS NULL{before}) "
        f"ELSE (SELECT COUNT(*) FROM messages AS s WHERE {same} "
        f"AND s.parent_id = page.parent_id{before}) END"
    )


# A page of the conversation's current branches (:leaf's branch for :leaf_session), oldest
# first; the siblings are counted for the page's rows only.
LIST_BRANCH = (
    "WITH RECURSIVE "
    + _UP.format(seed=_HEADS_AND.format(id=":leaf"), stop="")
    + ", page AS MATERIALIZED (SELECT "
    + _M
    + ", m.seq FROM messages AS m JOIN up ON m.id = up.id ORDER BY m.seq "
    "LIMIT :limit OFFSET :offset) "
    f"SELECT page.*, {_siblings('')} AS sibling_count, "
    f"{_siblings(' AND s.seq <= page.seq')} AS sibling_index FROM page ORDER BY page.seq"
)

# -- recovery after a restart (literal statuses, to match the partial indexes) ----------------
COUNT_IN_PROGRESS = f"SELECT COUNT(*) FROM messages WHERE status = '{IN_PROGRESS}'"
MARK_INTERRUPTED = (
    "UPDATE messages SET status = :status, finish_reason = :finish_reason, "
    "error_code = :error_code, error_message = :error_message, updated_at = :at "
    f"WHERE status = '{IN_PROGRESS}'"
)
# One session's, after its live state was lost (served by messages_by_session).
MARK_SESSION_INTERRUPTED = (
    MARK_INTERRUPTED + " AND chat_session_id = :chat_session_id AND org_id = :org_id"
)
RECOVER_SESSIONS = (
    "UPDATE chat_sessions SET status = :status, updated_at = :at, version = version + 1 "
    f"WHERE status = '{RESPONDING}'"
)

# -- usage reports (served by messages_by_org_time) ------------------------------------------
USAGE_BY_MODEL = (
    "SELECT model_id, COUNT(*) AS replies, "
    "COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, "
    "COALESCE(SUM(completion_tokens), 0) AS completion_tokens, "
    "SUM(CASE WHEN usage_estimated THEN 1 ELSE 0 END) AS estimated_replies "
    "FROM messages WHERE org_id = :org_id AND created_at >= :start AND created_at < :end "
    "AND model_id IS NOT NULL GROUP BY model_id ORDER BY model_id"
)

# -- idempotency keys ------------------------------------------------------------------------
GET_KEY = (
    "SELECT fingerprint, done, status, body FROM idempotency_keys "
    "WHERE scope = :scope AND key = :key"
)
INSERT_KEY = (
    "INSERT INTO idempotency_keys (scope, key, fingerprint, done, created_at) "
    "VALUES (:scope, :key, :fingerprint, FALSE, :at)"
)
FINISH_KEY = (
    "UPDATE idempotency_keys SET done = TRUE, status = :status, body = :body "
    "WHERE scope = :scope AND key = :key"
)
RELEASE_KEY = "DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key"
FORGET_OLD_KEYS = "DELETE FROM idempotency_keys WHERE created_at < :before"
FORGET_UNFINISHED_KEYS = "DELETE FROM idempotency_keys WHERE NOT done"

# -- models organisations registered ---------------------------------------------------------
ORG_MODEL_COLUMNS = ("id", "org_id", "entry", "encrypted_api_key", "created_at")
INSERT_ORG_MODEL = _insert("org_models", ORG_MODEL_COLUMNS)
LIST_ORG_MODELS = _select("org_models", ORG_MODEL_COLUMNS, "ORDER BY seq")
GET_ORG_MODEL = _select("org_models", ORG_MODEL_COLUMNS, "WHERE id = :id AND org_id = :org_id")
DELETE_ORG_MODEL = "DELETE FROM org_models WHERE id = :id AND org_id = :org_id"
