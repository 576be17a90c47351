"""Appending to and reading the audit chain in the database.

Every append runs in its own short transaction on its own pooled connection — never in
the request's ORM session — so a rollback of the request keeps the audit entry, and the
audit commit does not commit the request's half-done work.

Appends are serialised so the chain never forks, even across processes and machines:

* PostgreSQL: ``pg_advisory_xact_lock(LOCK_KEY)`` (a transaction-level advisory lock,
  released by the commit) before the head is read, at READ COMMITTED so the head read
  sees the previous holder's committed entry. ``LOCK_KEY`` is the first 8 bytes of
  SM3(``"idp.audit_event chain"``) as a signed 64-bit integer.
* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock before the head is read.

The unique constraints on ``seq`` and ``prev_hash`` back this up: a second writer that
somehow read the same head fails to insert, and retries.

SQLite has a single writer: if the calling thread's ORM session holds an uncommitted
write, an append would wait for that session, which waits for the append. ``record``
refuses at once (:class:`AuditError`) instead of hanging for the busy timeout; commit
(or record) before writing, or record after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.exc import IntegrityError

from ..crypto.sm3 import sm3_digest
from ..extensions import db
from . import models
from .chain import ZERO_HASH, VerifyResult, compute_hash, export_line, walk
from .masking import mask_details, mask_identifier

_T = models.AuditEvent.__table__
_COLUMNS = (_T.c.seq, _T.c.ts, _T.c.event, _T.c.actor, _T.c.subject, _T.c.client_id,
            _T.c.ip, _T.c.details, _T.c.prev_hash, _T.c.hash)

LOCK_KEY = int.from_bytes(sm3_digest(b"idp.audit_event chain")[:8], "big", signed=True)
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
BATCH = 5000
_RETRIES = 5


class AuditError(RuntimeError):
    """The audit entry could not be written."""


@dataclass(frozen=True)
class Entry:
    """An audit entry as stored (``details`` already masked)."""

    seq: int
    ts: float
    event: str
    actor: str
    subject: str | None
    client_id: str | None
    ip: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def export_line(self) -> str:
        return export_line(self.as_dict())


def _clip(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]


def _valid_event(event: str) -> bool:
    if not event or len(event) > models.EVENT_LEN or not event[0].isalpha():
        return False
    return all(c.isascii() and (c.isalnum() or c in "._-") for c in event) and event.islower()


def _engine() -> Engine:
    return db.engine


def _is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _session_holds_sqlite_write() -> bool:
    session = db.session()
    if not session.in_transaction():
        return False
    raw = session.connection().connection.driver_connection
    return bool(getattr(raw, "in_transaction", False))


def _begin_locked(conn: Connection, sqlite: bool) -> None:
    if sqlite:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(_PG_LOCK, {"k": LOCK_KEY})


def record(event: str, *, actor: str, subject: str | None = None,
           client_id: str | None = None, ip: str | None = None,
           details: Mapping[str, Any] | None = None) -> Entry:
    """Append one audit entry in its own transaction and return it as stored.

    ``event`` is a lowercase dotted name (``login.failure``); ``actor`` who did it (a
    person id, a client id, ``cli:<user>`` or ``system``); ``subject`` whom it is about.
    ``ip`` defaults to the current request's ``remote_addr`` when there is a request.
    ``details`` is masked with :func:`idp.audit.masking.mask_details` first; ``actor``
    and ``subject`` are masked only if they are a bare ID or mobile number. Values longer
    than their column are cut. Raises :class:`AuditError` (or the database's error) when
    nothing was written — audit failures are not swallowed.
    """
    if not isinstance(event, str) or not _valid_event(event):
        raise ValueError(f"invalid audit event name {event!r}: lowercase letters, digits, "
                         f"'.', '_' and '-', at most {models.EVENT_LEN} characters")
    if not actor:
        raise ValueError("an audit entry needs an actor")
    if details is not None and not isinstance(details, Mapping):
        raise TypeError("audit details must be a mapping")
    if ip is None:
        ip = _request_ip()
    fields: dict[str, Any] = {
        "event": event,
        "actor": _clip(mask_identifier(actor), models.ACTOR_LEN),
        "subject": _clip(mask_identifier(subject), models.SUBJECT_LEN),
        "client_id": _clip(mask_identifier(client_id), models.CLIENT_ID_LEN),
        "ip": _clip(mask_identifier(ip), models.IP_LEN),
        "details": mask_details(dict(details or {})),
    }
    engine = _engine()
    sqlite = _is_sqlite(engine)
    if sqlite and _session_holds_sqlite_write():
        raise AuditError("audit record() on SQLite while this thread's database session holds "
                         "an uncommitted write would deadlock; commit first")
    for attempt in range(_RETRIES):
        try:
            return _append(engine, sqlite, fields)
        except IntegrityError:
            # Only if the lock was bypassed (or the table altered by hand): the unique
            # constraints stopped a fork; read the new head and try again.
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _append(engine: Engine, sqlite: bool, fields: dict[str, Any]) -> Entry:
    conn = engine.connect()
    try:
        if not sqlite:
            conn = conn.execution_options(isolation_level="READ COMMITTED")
        _begin_locked(conn, sqlite)
        last = conn.execute(
            select(_T.c.seq, _T.c.hash, _T.c.ts).order_by(_T.c.seq.desc()).limit(1)).first()
        now = round(time.time(), 6)
        entry = {
            **fields,
            "seq": (last.seq if last else 0) + 1,
            "prev_hash": last.hash if last else ZERO_HASH,
            # Never earlier than the previous entry: ts follows seq even when the
            # workers' clocks disagree a little, so a time range is a run of the chain.
            "ts": max(now, last.ts) if last else now,
        }
        entry["hash"] = compute_hash(entry)
        conn.execute(insert(_T).values(**entry))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    return Entry(**entry)


def _request_ip() -> str | None:
    from flask import has_request_context, request

    return request.remote_addr if has_request_context() else None


def head() -> tuple[int, str]:
    """(``seq``, ``hash``) of the newest entry; (0, 64 zeros) for an empty log.

    Keep it outside the database (ticket, SIEM, paper) and pass it back to
    :func:`verify` as ``expected_head``: that is what detects deletion of the newest
    entries, or a rewritten tail."""
    with _engine().connect() as conn:
        row = conn.execute(
            select(_T.c.seq, _T.c.hash).order_by(_T.c.seq.desc()).limit(1)).first()
    return (row.seq, row.hash) if row else (0, ZERO_HASH)


def _rows(where=None, batch: int = BATCH, *, as_dict: bool = True
          ) -> Iterator[Mapping[str, Any]]:
    """All entries (matching ``where``) in ``seq`` order, fetched in keyset batches so
    memory stays flat and no transaction stays open across batches. ``as_dict=False``
    yields read-only row mappings (cheaper, for verification)."""
    last: int | None = None
    with _engine().connect() as conn:
        while True:
            query = select(*_COLUMNS).order_by(_T.c.seq).limit(batch)
            if where is not None:
                query = query.where(where)
            if last is not None:
                query = query.where(_T.c.seq > last)
            rows = conn.execute(query).all()
            conn.rollback()
            if not rows:
                return
            if as_dict:
                for row in rows:
                    yield row._asdict()
            else:
                for row in rows:
                    yield row._mapping
            last = rows[-1].seq


def _locate(hash_: str) -> int | None:
    with _engine().connect() as conn:
        return conn.execute(select(_T.c.seq).where(_T.c.hash == hash_)).scalar()


def verify(expected_head: tuple[int, str] | None = None, *, batch: int = BATCH) -> VerifyResult:
    """Walk the whole chain in ``seq`` order and report the first problem (see
    :func:`idp.audit.chain.walk`): altered, deleted, inserted or reordered entries; with
    ``expected_head`` also truncation or a rewritten tail."""
    with closing(_rows(batch=batch, as_dict=False)) as rows:
        return walk(rows, locate=_locate, expected_head=expected_head)


def export(since: float, until: float | None = None, *, batch: int = BATCH
           ) -> Iterator[dict[str, Any]]:
    """Entries with ``since <= ts < until`` in ``seq`` order, as dicts with ``hash``
    (see :func:`idp.audit.chain.export_line` for the shipping format)."""
    cond = _T.c.ts >= since
    if until is not None:
        cond = cond & (_T.c.ts < until)
    yield from _rows(cond, batch)
