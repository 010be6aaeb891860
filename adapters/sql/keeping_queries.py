"""The SQL of conversations people keep (keeping_store.py): changes, deletion, feedback,
generated titles, export and import. Portable text, as queries.py; indexes in schema.py
(the migration that adds message_feedback)."""

from __future__ import annotations

from conversation_service.adapters.sql.queries import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    _insert,
    _select,
)
from conversation_service.adapters.sql.rows import UNTITLED

_CONVERSATION = ", ".join(CONVERSATION_COLUMNS)

# -- changes and titles ----------------------------------------------------------------------
# Only what is given changes; updated_at only moves forward (as Conversation.touched).
UPDATE_CONVERSATION = (
    "UPDATE conversations SET title = COALESCE(:title, title), "
    "is_archived = COALESCE(:is_archived, is_archived), "
    "updated_at = CASE WHEN updated_at < :at THEN :at ELSE updated_at END "
    f"WHERE id = :id AND org_id = :org_id RETURNING {_CONVERSATION}"
)
# A generated title never replaces a title: the condition is the whole guard against a user's
# rename racing the title model.
SET_GENERATED_TITLE = (
    "UPDATE conversations SET title = :title "
    f"WHERE id = :id AND org_id = :org_id AND title = '{UNTITLED}' RETURNING id"
)

# -- deletion (children first: the foreign keys point up) ------------------------------------
_OF_CONVERSATION = "WHERE conversation_id = :id AND org_id = :org_id"
SESSION_IDS_OF_CONVERSATION = f"SELECT id FROM chat_sessions {_OF_CONVERSATION} ORDER BY seq"
DELETE_CONVERSATION = (
    f"DELETE FROM message_feedback {_OF_CONVERSATION}",
    f"DELETE FROM messages {_OF_CONVERSATION}",
    f"DELETE FROM chat_sessions {_OF_CONVERSATION}",
)
DELETE_CONVERSATION_ROW = (
    "DELETE FROM conversations WHERE id = :id AND org_id = :org_id RETURNING id"
)
# Kept answers to an organisation's POSTs that quote an id (scopes are "<org_id>/<token_id>").
FORGET_KEYS_NAMING = "DELETE FROM idempotency_keys WHERE scope LIKE :scope AND body LIKE :named"

# -- feedback --------------------------------------------------------------------------------
FEEDBACK_COLUMNS = (
    "message_id", "org_id", "conversation_id", "rating", "comment", "created_at", "updated_at",
)  # fmt: skip
GET_FEEDBACK = _select(
    "message_feedback", FEEDBACK_COLUMNS, "WHERE message_id = :message_id AND org_id = :org_id"
)
INSERT_FEEDBACK = _insert("message_feedback", FEEDBACK_COLUMNS)
PUT_FEEDBACK = (
    INSERT_FEEDBACK + " ON CONFLICT (message_id) DO UPDATE SET rating = excluded.rating, "
    "comment = excluded.comment, updated_at = excluded.updated_at "
    "WHERE message_feedback.org_id = excluded.org_id"
)
DELETE_FEEDBACK = (
    "DELETE FROM message_feedback WHERE message_id = :message_id AND org_id = :org_id "
    "RETURNING message_id"
)
# Always this many ids (a short list is padded with repeats): one statement text, prepared once.
IDS_PER_LOOKUP = 100
_IDS = ", ".join(f":id{n}" for n in range(IDS_PER_LOOKUP))
FEEDBACK_FOR = _select(
    "message_feedback", FEEDBACK_COLUMNS, f"WHERE org_id = :org_id AND message_id IN ({_IDS})"
)
FEEDBACK_BY_MODEL = (
    "SELECT m.model_id AS model_id, "
    "SUM(CASE WHEN f.rating = 'up' THEN 1 ELSE 0 END) AS up, "
    "SUM(CASE WHEN f.rating = 'down' THEN 1 ELSE 0 END) AS down "
    "FROM message_feedback f JOIN messages m ON m.id = f.message_id "
    "WHERE f.org_id = :org_id AND m.created_at >= :start AND m.created_at < :end "
    "AND m.model_id IS NOT NULL GROUP BY m.model_id ORDER BY m.model_id"
)

# -- export (keyset pages: constant work per page however far the export has gone) -----------
_OLDEST_FIRST = "ORDER BY created_at, id LIMIT :limit"
EXPORT_CONVERSATIONS = _select(
    "conversations", CONVERSATION_COLUMNS, f"WHERE org_id = :org_id {_OLDEST_FIRST}"
)
EXPORT_CONVERSATIONS_AFTER = _select(
    "conversations",
    CONVERSATION_COLUMNS,
    "WHERE org_id = :org_id AND (created_at > :created_at OR (created_at = :created_at "
    f"AND id > :id)) {_OLDEST_FIRST}",
)
FEEDBACK_AS = {  # the feedback columns beside a message's, prefixed
    "rating": "feedback_rating",
    "comment": "feedback_comment",
    "created_at": "feedback_created_at",
    "updated_at": "feedback_updated_at",
}
EXPORT_MESSAGES = (
    "SELECT "
    + ", ".join(f"m.{column}" for column in MESSAGE_COLUMNS)
    + ", m.seq, "
    + ", ".join(f"f.{column} AS {alias}" for column, alias in FEEDBACK_AS.items())
    + " FROM messages m LEFT JOIN message_feedback f ON f.message_id = m.id "
    "WHERE m.conversation_id = :conversation_id AND m.org_id = :org_id AND m.seq > :after "
    "ORDER BY m.seq LIMIT :limit"
)

# -- import: which of a batch's ids are taken already ----------------------------------------
IDS_PER_BATCH = 500
_BATCH_IDS = ", ".join(f":id{n}" for n in range(IDS_PER_BATCH))
SET_IMPORTED_HEAD = "UPDATE chat_sessions SET head_id = :head_id WHERE id = :id"
TAKEN_IDS = {
    table: f"SELECT id FROM {table} WHERE id IN ({_BATCH_IDS})"
    for table in ("conversations", "chat_sessions", "messages")
}
