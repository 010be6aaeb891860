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
    "system_prompt", "temperature", "top_p", "max_tokens", "context", "version",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "id", "org_id", "conversation_id", "chat_session_id", "role", "content", "status",
    "model_id", "finish_reason", "prompt_tokens", "completion_tokens", "usage_estimated",
    "error_code", "error_message", "first_token_ms", "total_ms", "created_at", "updated_at",
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
    "UPDATE chat_sessions SET status = :status, updated_at = :updated_at, version = :version "
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
# What a model is shown, newest first (reversed by the store): never an empty reply or one
# still being written; no more than a prompt could hold.
_SHOWN = f"AND status <> '{IN_PROGRESS}' AND NOT (role = 'assistant' AND content = '')"
_IN_SESSION = "WHERE chat_session_id = :chat_session_id AND org_id = :org_id"
_IN_CONVERSATION = "WHERE conversation_id = :conversation_id AND org_id = :org_id"
_NEWEST = "ORDER BY seq DESC LIMIT :limit"
SESSION_HISTORY = _select("messages", MESSAGE_COLUMNS, f"{_IN_SESSION} {_SHOWN} {_NEWEST}")
CONVERSATION_HISTORY = _select(
    "messages", MESSAGE_COLUMNS, f"{_IN_CONVERSATION} {_SHOWN} {_NEWEST}"
)
SESSION_HISTORY_COUNT = f"SELECT COUNT(*) FROM messages {_IN_SESSION} {_SHOWN}"
CONVERSATION_HISTORY_COUNT = f"SELECT COUNT(*) FROM messages {_IN_CONVERSATION} {_SHOWN}"

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
