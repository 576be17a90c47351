"""How many records a source will yield, for the import's progress (issue 12): counted
by the database for SQL sources; ``None`` (no percentage) when it cannot say."""

from __future__ import annotations

import sqlite3

from connectors.sql_source import SqlSource

FIELDS = {"legacy_id": "id", "name": "name"}


def _db(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE yh (id TEXT, name TEXT)")
        conn.executemany("INSERT INTO yh VALUES (?, ?)",
                         [("1", "a"), ("2", "b"), (None, "c"), ("4", "d")])
    return f"sqlite:///{path}"


def test_sql_table_and_query_are_counted_by_the_database(tmp_path):
    url = _db(tmp_path)
    assert SqlSource("s", FIELDS, url=url, table="yh").total_hint() == 4
    query = "SELECT id, name FROM yh WHERE name <> 'a'"
    assert SqlSource("s", FIELDS, url=url, query=query).total_hint() == 3


def test_sql_total_is_none_when_the_database_cannot_say(tmp_path):
    url = _db(tmp_path)
    assert SqlSource("s", FIELDS, url=url, table="nope").total_hint() is None
    assert SqlSource("s", FIELDS, url=url, query="SELEKT 1").total_hint() is None
