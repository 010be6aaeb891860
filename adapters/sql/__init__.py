"""The SQL storage adapter: SQLite now (through `databases` and aiosqlite), bridged to trio."""

from conversation_service.adapters.sql.opening import (
    normalise_url,
    open_sql_store,
    sqlite_url_for_dir,
)
from conversation_service.adapters.sql.schema import SchemaTooNew
from conversation_service.adapters.sql.sql_store import SqlStore

__all__ = ["SchemaTooNew", "SqlStore", "normalise_url", "open_sql_store", "sqlite_url_for_dir"]
