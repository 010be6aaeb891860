"""The store's `:name` SQL, as asyncpg is given it: `$1..$n` and the values in that order."""

from __future__ import annotations

import pytest

from conversation_service.adapters.sql import queries as q
from conversation_service.adapters.sql.statements import positional


def test_parameters_are_numbered_in_order_of_first_use() -> None:
    text, names = positional(
        "UPDATE t SET v = :version WHERE id = :id AND v = :version - 1 RETURNING v"
    )
    assert text == "UPDATE t SET v = $1 WHERE id = $2 AND v = $1 - 1 RETURNING v"
    assert names == ("version", "id")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'a :literal, it''s :not a parameter' FROM t",
        'SELECT "odd :column" FROM t',
        "SELECT x::text FROM t",
        "SELECT COUNT(*) FROM t",
    ],
)
def test_quoted_text_casts_and_plain_sql_are_left_alone(sql: str) -> None:
    assert positional(sql) == (sql, ())


def test_a_statement_is_translated_once_then_reused() -> None:
    first = positional(q.UPDATE_SESSION)
    assert positional(q.UPDATE_SESSION) is first


def test_every_store_statement_keeps_its_parameters() -> None:
    for name in dir(q):
        sql = getattr(q, name)
        if not name.isupper() or not isinstance(sql, str):
            continue
        text, names = positional(sql)
        assert ":" not in text.replace("::", ""), (name, text)
        assert len(set(names)) == len(names)
        assert all(f":{n}" in sql for n in names)
