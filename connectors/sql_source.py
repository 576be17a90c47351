"""Any database SQLAlchemy can reach: a query or a table, streamed.

Rows are fetched with ``stream_results=True`` (a server-side cursor on PostgreSQL and
MySQL; SQLite's cursor already steps row by row) and ``yield_per``, so memory stays
flat whatever the table size. A ``table`` is reflected and selected by SQLAlchemy (the
name is quoted, never pasted into SQL); a ``query`` is run as written — it comes from
the operator's configuration file, not from users.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import MetaData, Table, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.sql.elements import TextClause

from connectors.base import ConnectorError, Source, redact_url

DEFAULT_BATCH = 1000


def _driver_url(url: str) -> str:
    """Plain ``postgres://``/``postgresql://`` → psycopg 3, the driver this project ships
    (SQLAlchemy would otherwise look for psycopg2)."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


class SqlSource(Source):
    kind = "sql"

    def __init__(self, name: str, fields: Mapping[str, str], *, url: str,
                 query: str | None = None, table: str | None = None,
                 batch_size: int = DEFAULT_BATCH, trusted: bool = False,
                 password_format: str | None = None,
                 entity: str = "auto") -> None:
        super().__init__(name, fields, trusted=trusted, password_format=password_format,
                         entity=entity)
        try:
            self.url = make_url(_driver_url(url))
        except (ArgumentError, ValueError, TypeError):
            raise ConnectorError(f"source {name!r}: [sql] url is not a database URL "
                                 f"({redact_url(url)!r})") from None
        if (query is None) == (table is None):
            raise ConnectorError(f"source {name!r}: [sql] needs exactly one of "
                                 "'query' or 'table'")
        if query is not None and not query.strip():
            raise ConnectorError(f"source {name!r}: [sql] query is empty")
        if table is not None and not table.strip():
            raise ConnectorError(f"source {name!r}: [sql] table is empty")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConnectorError(f"source {name!r}: [sql] batch_size must be a positive "
                                 "integer")
        self.query = query
        self.table = table.strip() if table else None
        self.batch_size = batch_size

    def _location(self) -> dict[str, Any]:
        where: dict[str, Any] = {"url": self.url.render_as_string(hide_password=True)}
        if self.table:
            where["table"] = self.table
        else:
            where["query"] = self.query
        return where

    def _fail(self, what: str, exc: BaseException) -> ConnectorError:
        return ConnectorError(f"source {self.name!r}: {what} "
                              f"({self.url.render_as_string(hide_password=True)}): "
                              f"{_first_line(exc)}")

    def total_hint(self) -> int | None:
        """``SELECT count(*)`` over the same query or table, for progress; ``None`` when
        the database will not say (the import itself then reports the real error)."""
        try:
            engine = create_engine(self.url)
        except (ArgumentError, NoSuchModuleError, ImportError):
            return None
        try:
            with engine.connect() as conn:
                statement = self._statement(conn)
                if isinstance(statement, TextClause):
                    statement = statement.columns()
                statement = statement.subquery()
                return int(conn.execute(select(func.count()).select_from(statement)).scalar())
        except (SQLAlchemyError, ConnectorError, TypeError, ValueError):
            return None
        finally:
            engine.dispose()

    def _records(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        try:
            engine = create_engine(self.url)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise self._fail("cannot use database URL", exc) from None
        try:
            yield from self._stream(engine)
        finally:
            engine.dispose()

    def _statement(self, conn: Any) -> Any:
        if self.query is not None:
            return text(self.query)
        schema, _, name = self.table.rpartition(".")
        try:
            table = Table(name, MetaData(), schema=schema or None, autoload_with=conn)
        except NoSuchTableError:
            raise ConnectorError(f"source {self.name!r}: table {self.table!r} does not "
                                 "exist") from None
        return select(table)

    def _stream(self, engine: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise self._fail("cannot connect", exc) from None
        with conn:
            try:
                result = conn.execution_options(
                    stream_results=True, yield_per=self.batch_size
                ).execute(self._statement(conn))
            except SQLAlchemyError as exc:
                raise self._fail("query failed", exc) from None
            with result:
                columns = list(result.keys())
                missing = [c for c in dict.fromkeys(self.fields.values()) if c not in columns]
                if missing:
                    raise ConnectorError(
                        f"source {self.name!r}: the result has no column(s) "
                        f"{', '.join(repr(c) for c in missing)}; it has "
                        f"{', '.join(repr(c) for c in columns[:30])}")
                id_column = self.fields["legacy_id"]
                number = 0
                try:
                    for row in result.mappings():
                        number += 1
                        yield f"row {number} ({id_column}={row[id_column]!r})", row
                except SQLAlchemyError as exc:
                    raise self._fail(f"reading failed after row {number}", exc) from None
