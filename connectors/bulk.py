"""Set-at-a-time writes for the importer, inside the session's current transaction.

On PostgreSQL (psycopg 3) new rows go in with ``COPY … FROM STDIN`` on the session's
own connection: no SQL text to build or parse per row, and still part of the batch's
transaction, so a failed batch leaves nothing behind. Elsewhere (SQLite) an
``executemany`` of one prepared INSERT does the same job. Updates are an
``executemany`` everywhere (psycopg pipelines them).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Table, any_, bindparam, update
from sqlalchemy.dialects.postgresql import ARRAY

from idp.extensions import db


def _uses_copy(conn: Any) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def among(column: Any, values: Collection[Any]) -> Any:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``: one parameter
    instead of thousands to render, send and parse for every batch."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def insert_rows(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, every NOT NULL column given)."""
    if not rows:
        return
    conn = db.session.connection()
    if not _uses_copy(conn):
        conn.execute(table.insert(), list(rows))
        return
    from psycopg import sql

    columns = list(rows[0])
    as_json = [isinstance(table.c[name].type, JSON) for name in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with conn.connection.driver_connection.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row([json.dumps(row[c]) if j and row[c] is not None else row[c]
                            for c, j in zip(columns, as_json, strict=True)])


def update_rows(table: Table, key: str, rows: Iterable[dict[str, Any]]) -> None:
    """``UPDATE table SET … WHERE key = row[key]`` for each row (same keys in each)."""
    rows = list(rows)
    if not rows:
        return
    # Bind names must differ from column names in an executemany UPDATE.
    params = [{f"b_{k}": v for k, v in row.items()} for row in rows]
    values = {k: bindparam(f"b_{k}") for k in rows[0] if k != key}
    statement = update(table).where(table.c[key] == bindparam(f"b_{key}")).values(values)
    db.session.connection().execute(statement, params)
