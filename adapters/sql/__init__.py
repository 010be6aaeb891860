"""The SQL storage adapter: SQLite (aiosqlite) or PostgreSQL (asyncpg) through `databases`,
bridged to trio."""

from conversation_service.adapters.sql.dialects import normalise_url
from conversation_service.adapters.sql.opening import open_sql_store, sqlite_url_for_dir
from conversation_service.adapters.sql.schema import SchemaTooNew
from conversation_service.adapters.sql.sql_store import SqlStore

__all__ = ["SchemaTooNew", "SqlStore", "normalise_url", "open_sql_store", "sqlite_url_for_dir"]
