"""The SQL of several instances on one PostgreSQL (adapters/sql/cluster.py).

Plain text with `:name` parameters, like queries.py. PostgreSQL's own: NOTIFY (pg_notify)
and the advisory lock an organisation's stream slots are taken under.
"""

from __future__ import annotations

from conversation_service.adapters.sql.schema import RESPONDING

_LIVE = "SELECT id FROM instances WHERE seen_at > :fresh"

HEARTBEAT = (
    "INSERT INTO instances (id, started_at, seen_at) VALUES (:id, :at, :at) "
    "ON CONFLICT (id) DO UPDATE SET seen_at = :at"
)
LEAVE = (
    "DELETE FROM session_leases WHERE instance_id = :id",
    "DELETE FROM stream_slots WHERE instance_id = :id",
    "DELETE FROM instances WHERE id = :id",
)

# Taken when free, when already ours, or when its holder is gone; else nothing comes back.
CLAIM = (
    "INSERT INTO session_leases (session_id, org_id, instance_id, taken_at) "
    "VALUES (:session_id, :org_id, :me, :at) "
    "ON CONFLICT (session_id) DO UPDATE SET instance_id = :me, taken_at = :at "
    "WHERE session_leases.instance_id = :me "
    f"OR session_leases.instance_id NOT IN ({_LIVE}) "
    "RETURNING instance_id"
)
LEASE_HOLDER = "SELECT instance_id FROM session_leases WHERE session_id = :session_id"
RELEASE = "DELETE FROM session_leases WHERE session_id = :session_id AND instance_id = :me"
LIVE_HOLDER = (
    f"SELECT instance_id FROM session_leases WHERE session_id = :session_id "
    f"AND instance_id IN ({_LIVE})"
)
# A deleted session's lease, and the commands sent for it (keeping.py deletes the rest).
FORGET_SESSION = (
    "DELETE FROM session_leases WHERE session_id = :session_id",
    "DELETE FROM session_commands WHERE session_id = :session_id",
)

# Sessions leased by an instance that is gone, or left replying with no lease at all (an
# instance that died between its lease and its reply, or before this one ever started).
ORPHANS = (
    "SELECT org_id, session_id FROM session_leases "
    f"WHERE instance_id NOT IN ({_LIVE}) "
    "UNION "
    "SELECT org_id, id AS session_id FROM chat_sessions "
    f"WHERE status = '{RESPONDING}' AND id NOT IN (SELECT session_id FROM session_leases)"
)

INSERT_COMMAND = (
    "INSERT INTO session_commands "
    "(id, session_id, org_id, recipient, sender, kind, body, created_at) "
    "VALUES (:id, :session_id, :org_id, :recipient, :sender, :kind, :body, :created_at)"
)
GET_COMMAND = (
    "SELECT id, session_id, org_id, recipient, sender, kind, body FROM session_commands "
    "WHERE id = :id AND answer IS NULL"
)
ANSWER_COMMAND = "UPDATE session_commands SET answer = :answer WHERE id = :id"
COMMAND_ANSWER = "SELECT answer FROM session_commands WHERE id = :id"
FORGET_OLD_COMMANDS = "DELETE FROM session_commands WHERE created_at < :before"

NOTIFY = "SELECT pg_notify(:channel, :payload)"

HIT = (
    "INSERT INTO rate_windows (key, window_start, hits) VALUES (:key, :window_start, 1) "
    "ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_windows.hits + 1 "
    "RETURNING hits"
)
HITS = "SELECT hits FROM rate_windows WHERE key = :key AND window_start = :window_start"
FORGET_WINDOWS = "DELETE FROM rate_windows WHERE window_start < :before"

LOCK_ORG_SLOTS = "SELECT pg_advisory_xact_lock(hashtextextended(:org_id, 0))"
SLOTS_HELD = (
    "SELECT COALESCE(SUM(held), 0) FROM stream_slots "
    f"WHERE org_id = :org_id AND instance_id IN ({_LIVE})"
)
TAKE_SLOT = (
    "INSERT INTO stream_slots (org_id, instance_id, held) VALUES (:org_id, :me, 1) "
    "ON CONFLICT (org_id, instance_id) DO UPDATE SET held = stream_slots.held + 1"
)
GIVE_SLOT = (
    "UPDATE stream_slots SET held = held - 1 "
    "WHERE org_id = :org_id AND instance_id = :me AND held > 0"
)
