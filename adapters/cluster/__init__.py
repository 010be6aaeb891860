"""How instances of the service share one database: alone (SQLite, memory) or several (on
PostgreSQL, see adapters/sql/cluster.py)."""
