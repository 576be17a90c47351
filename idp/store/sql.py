"""Embedded backend: the ``kv_entry`` table of the main database.

Used when no Redis is configured, so a single SQLite file is the whole deployment.
Each call runs in its own short transaction on its own connection, never in the
ORM session of the request, so a store write is visible to other workers at once.
Expired rows are invisible to reads and swept now and then by writes.
"""

from __future__ import annotations

import functools
import json
import random
import time
from typing import Any

from sqlalchemy import Integer as _INT
from sqlalchemy import Text as _TEXT
from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as _pg_insert
from sqlalchemy.dialects.sqlite import insert as _sqlite_insert
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..models import KVEntry
from .base import Store, StoreUnavailable

_T = KVEntry.__table__
_UPSERT = {"sqlite": _sqlite_insert, "postgresql": _pg_insert}  # INSERT … ON CONFLICT
_SWEEP_EVERY = 200  # writes, on average, between sweeps of expired rows


# The database gone, restarting or out of pooled connections; not a constraint or a bug.
UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)


def _guarded(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except UNREACHABLE as exc:
            cause = getattr(exc, "orig", None) or exc
            raise StoreUnavailable(f"database: {type(cause).__name__}") from exc
    return call


class SQLStore(Store):
    backend = "sql"

    def __init__(self, engine_factory):
        self._engine_factory = engine_factory

    @_guarded
    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(select(1))

    @property
    def engine(self):
        return self._engine_factory()

    def _live(self, conn, key: str):
        row = conn.execute(select(_T.c.value, _T.c.expires_at).where(_T.c.key == key)).first()
        if row is None or row.expires_at <= time.time():
            return None
        return row

    def _maybe_sweep(self, conn) -> None:
        # Not a security decision: only spreads the cost of deleting dead rows.
        if random.randrange(_SWEEP_EVERY) == 0:  # noqa: S311
            conn.execute(delete(_T).where(_T.c.expires_at <= time.time()))

    @_guarded
    def get(self, key):
        with self.engine.connect() as conn:
            row = self._live(conn, key)
        return None if row is None else json.loads(row.value)

    @_guarded
    def set(self, key, value, ttl):
        data, exp = json.dumps(value), time.time() + ttl
        with self.engine.begin() as conn:
            self._maybe_sweep(conn)
            done = conn.execute(
                update(_T).where(_T.c.key == key).values(value=data, expires_at=exp))
            if done.rowcount == 0:
                self._insert_or_replace(conn, key, data, exp)

    def _insert_or_replace(self, conn, key, data, exp):
        try:
            with conn.begin_nested():
                conn.execute(insert(_T).values(key=key, value=data, expires_at=exp))
        except IntegrityError:
            conn.execute(update(_T).where(_T.c.key == key).values(value=data, expires_at=exp))

    @_guarded
    def add(self, key, value, ttl):
        now = time.time()
        with self.engine.begin() as conn:
            self._maybe_sweep(conn)
            conn.execute(delete(_T).where(_T.c.key == key, _T.c.expires_at <= now))
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(_T).values(key=key, value=json.dumps(value), expires_at=now + ttl)
                    )
            except IntegrityError:
                return False
        return True

    @_guarded
    def take(self, key):
        with self.engine.begin() as conn:
            row = conn.execute(
                delete(_T).where(_T.c.key == key).returning(_T.c.value, _T.c.expires_at)
            ).first()
        if row is None or row.expires_at <= time.time():
            return None
        return json.loads(row.value)

    @_guarded
    def delete(self, key):
        with self.engine.begin() as conn:
            conn.execute(delete(_T).where(_T.c.key == key))

    @_guarded
    def incr(self, key, ttl):
        """One atomic upsert: counters guard lockouts and rate limits, and a read
        followed by a write would let parallel requests read the same count (or reset
        a counter another request had just started)."""
        now = time.time()
        name = self.engine.dialect.name
        if name not in _UPSERT:
            raise NotImplementedError(f"the embedded store supports SQLite and PostgreSQL, "
                                      f"not {name}")
        live = _T.c.expires_at > now
        stmt = _UPSERT[name](_T).values(key=key, value="1", expires_at=now + ttl)
        stmt = stmt.on_conflict_do_update(index_elements=[_T.c.key], set_={
            "value": case((live, (_T.c.value.cast(_INT) + 1).cast(_TEXT)), else_="1"),
            "expires_at": case((live, _T.c.expires_at), else_=now + ttl),
        }).returning(_T.c.value)
        with self.engine.begin() as conn:
            self._maybe_sweep(conn)
            return int(conn.execute(stmt).scalar_one())

    @_guarded
    def append(self, key, value, ttl):
        with self.engine.begin() as conn:
            self._append_in(conn, key, value, ttl)

    @_guarded
    def append_many(self, items):
        # One transaction; rows locked in key order, so two callers cannot deadlock.
        with self.engine.begin() as conn:
            for key, value, ttl in sorted(items, key=lambda item: item[0]):
                self._append_in(conn, key, value, ttl)

    def _append_in(self, conn, key, value, ttl) -> None:
        now = time.time()
        row = conn.execute(
            select(_T.c.value, _T.c.expires_at).where(_T.c.key == key).with_for_update()
        ).first()
        items = json.loads(row.value) if row is not None and row.expires_at > now else []
        items.append(value)
        exp = max(now + ttl, row.expires_at if row is not None else 0)
        if row is None:
            self._insert_or_replace(conn, key, json.dumps(items), exp)
        else:
            conn.execute(update(_T).where(_T.c.key == key)
                         .values(value=json.dumps(items), expires_at=exp))

    @_guarded
    def members(self, key) -> list[Any]:
        return self.get(key) or []

    @_guarded
    def touch(self, key, ttl):
        now = time.time()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(_T)
                .where(_T.c.key == key, _T.c.expires_at > now)
                .values(expires_at=now + ttl)
            )
        return done.rowcount > 0

