"""Recording audit entries, chaining them, and reading the chain back.

Durable now, chained moments later
==================================

:func:`record` does one ``INSERT`` into ``audit_pending``, autocommitted on its own
pooled connection — never in the request's ORM session, so a rollback of the request
keeps the entry and the audit write does not commit the request's half-done work. It
takes no lock: any number of threads and processes record at once. When it returns,
the (masked) entry is durable, but it has no ``seq`` or ``hash`` yet.

:func:`chain_pending` moves the oldest pending rows, in ``id`` order, into
``audit_event``: it reads the chain head, gives each row the next ``seq``, the previous
``hash`` as ``prev_hash`` and its own SM3 ``hash`` (:mod:`idp.audit.chain`), inserts them
and deletes them from ``audit_pending`` — all in one transaction, under the chain lock.
A crash leaves every row either still pending or chained, never both, never neither.

It runs (see :mod:`idp.audit.background`) opportunistically right after a
:func:`record`, at most every 200 ms per process, without waiting for the lock; every
second from a per-process daemon thread while that process has recorded entries that
may be pending; at exit of a process that recorded; and, taking the lock and waiting
for it, from :func:`flush`, which :func:`verify`, :func:`export` and :func:`head` call
first so that what they report includes everything recorded before the call.

The chain lock
==============

* PostgreSQL: the transaction-level advisory lock ``LOCK_KEY`` (the first 8 bytes of
  SM3(``"idp.audit_event chain"``) as a signed 64-bit integer) — ``pg_try_advisory_xact_lock``
  for the opportunistic passes, which skip when another process holds it,
  ``pg_advisory_xact_lock`` for :func:`flush`. Released by the commit. READ COMMITTED, so
  the head read after the lock sees the previous holder's committed entries.
* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock before the head is read;
  the opportunistic passes try it with no busy wait and skip when the database is busy.

The unique constraints on ``seq`` and ``prev_hash`` back the lock up (a second chainer
that somehow read the same head fails to insert, and its rows stay pending), and the
rows are taken with ``DELETE … RETURNING``, so no pending row can be chained twice.

On PostgreSQL ``id`` comes from a sequence and is taken before the insert commits, so
a row can become visible after a row with a higher ``id`` was already chained; it is
chained in the next pass. ``ts`` is kept in ``seq`` order regardless (an entry's ``ts``
is moved up to its predecessor's when needed), so a time range is still a run of the
chain.

SQLite has a single writer: if the calling thread's ORM session holds an uncommitted
write, an insert on another connection would wait for that session, which waits for the
insert. :func:`record` and :func:`flush` refuse at once (:class:`AuditError`) instead of
hanging for the busy timeout; commit (or record) before writing, or record after the
commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ..crypto.sm3 import sm3_digest
from ..extensions import db
from . import models
from .chain import ZERO_HASH, VerifyResult, compute_hash, export_line, walk
from .masking import mask_details, mask_identifier

_T = models.AuditEvent.__table__
_P = models.AuditPending.__table__
_COLUMNS = (_T.c.seq, _T.c.ts, _T.c.event, _T.c.actor, _T.c.subject, _T.c.client_id,
            _T.c.ip, _T.c.details, _T.c.prev_hash, _T.c.hash)
_PENDING_FIELDS = ("ts", "event", "actor", "subject", "client_id", "ip", "details")
# Built once: building ``.values(**row)`` per call costs more than the insert itself.
_RECORD = insert(_P).returning(_P.c.id)

LOCK_KEY = int.from_bytes(sm3_digest(b"idp.audit_event chain")[:8], "big", signed=True)
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_PG_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:k)")
BATCH = 5000
#: Pending rows moved per chaining transaction.
CHAIN_BATCH = 1000
#: PostgreSQL: how long :func:`flush` waits for the chain lock before it gives up
#: (a chainer frozen mid-transaction would otherwise hang every verify, export, head).
FLUSH_LOCK_TIMEOUT = "60s"

log = logging.getLogger("idp.audit")

# Called after every committed record(). The scheduler that chains entries
# (:mod:`idp.audit.background`) registers itself here when ``idp.audit`` is imported: it
# needs this module's chaining pass, so this module must not import it back.
_after_record: list[Callable[[], None]] = []


def on_recorded(hook: Callable[[], None]) -> Callable[[], None]:
    """Have ``hook`` called (in the recording thread and app context) after each record."""
    if hook not in _after_record:
        _after_record.append(hook)
    return hook


# Called with each recorded entry (masked, as stored), for counting (idp.metrics).
_entry_hooks: list[Callable[[Pending], None]] = []


def on_entry(hook: Callable[[Pending], None]) -> Callable[[Pending], None]:
    """Have ``hook(entry)`` called after each committed record()."""
    if hook not in _entry_hooks:
        _entry_hooks.append(hook)
    return hook


class AuditError(RuntimeError):
    """The audit entry could not be written (or the chain could not be brought up to
    date)."""


@dataclass(frozen=True)
class Entry:
    """An audit entry as stored in the chain (``details`` already masked)."""

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


@dataclass(frozen=True)
class Pending:
    """An audit entry as :func:`record` stored it: durable and masked, not chained yet.

    ``id`` orders pending entries; ``seq``, ``prev_hash`` and ``hash`` are given when it
    is chained (:func:`flush` forces that). ``ts`` is when it was recorded; the chained
    entry has the same ``ts`` unless the entry before it in the chain has a later one.
    """

    id: int
    ts: float
    event: str
    actor: str
    subject: str | None
    client_id: str | None
    ip: str | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


_DEADLOCK = ("audit {what} on SQLite while this thread's database session holds an "
             "uncommitted write would deadlock; commit first")


# -- recording ------------------------------------------------------------------------


def record(event: str, *, actor: str, subject: str | None = None,
           client_id: str | None = None, ip: str | None = None,
           details: Mapping[str, Any] | None = None) -> Pending:
    """Record one audit entry — durably, in its own transaction — and return it as
    stored. It is chained moments later (see the module docstring).

    ``event`` is a lowercase dotted name (``login.failure``); ``actor`` who did it (a
    person id, a client id, ``cli:<user>`` or ``system``); ``subject`` whom it is about.
    ``ip`` defaults to the current request's ``remote_addr`` when there is a request.
    ``details`` is masked with :func:`idp.audit.masking.mask_details` first; ``actor``
    and ``subject`` are masked only if they are a bare ID or mobile number. Values longer
    than their column are cut. Raises :class:`AuditError` (or the database's error) when
    nothing was written — audit failures are not swallowed. Chaining failures are: the
    entry is safe in ``audit_pending`` and the next pass chains it.
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
    row: dict[str, Any] = {
        "ts": round(time.time(), 6),
        "event": event,
        "actor": _clip(mask_identifier(actor), models.ACTOR_LEN),
        "subject": _clip(mask_identifier(subject), models.SUBJECT_LEN),
        "client_id": _clip(mask_identifier(client_id), models.CLIENT_ID_LEN),
        "ip": _clip(mask_identifier(ip), models.IP_LEN),
        "details": mask_details(dict(details or {})),
    }
    engine = _engine()
    if _is_sqlite(engine) and _session_holds_sqlite_write():
        raise AuditError(_DEADLOCK.format(what="record()"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        pid = conn.execute(_RECORD, row).scalar_one()
    for hook in _after_record:
        hook()
    entry = Pending(id=pid, **row)
    for entry_hook in _entry_hooks:
        entry_hook(entry)
    return entry


def _request_ip() -> str | None:
    from flask import has_request_context, request

    return request.remote_addr if has_request_context() else None


# -- chaining -------------------------------------------------------------------------


def lock_chain(conn: Connection, *, wait: bool | float = True) -> bool:
    """Take the chain lock in ``conn``'s transaction (beginning it). ``wait``: True waits
    as long as the database lets it, False not at all; on SQLite a number waits up to
    that many seconds (PostgreSQL treats it as False — there only other chainers take the
    lock, while on SQLite every insert takes it, and a pass that never waits can be
    starved by a steady stream of them). Returns False if the lock was not obtained.
    Released when the transaction ends."""
    if _is_sqlite(conn.engine):
        raw = conn.connection.driver_connection
        if getattr(raw, "in_transaction", False):
            # Already in a write transaction (a migration): SQLite's lock is taken at
            # the first write and kept to the commit.
            return True
        if wait is True:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return True
        (before,) = conn.exec_driver_sql("PRAGMA busy_timeout").one()
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(float(wait) * 1000)}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError as exc:
            if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
                raise
            conn.rollback()
            return False
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(before)}")
        return True
    if wait is True:
        conn.execute(_PG_LOCK, {"k": LOCK_KEY})  # returns void once it has the lock
        return True
    return bool(conn.execute(_PG_TRY_LOCK, {"k": LOCK_KEY}).scalar())


def chain_locked(conn: Connection, *, limit: int = CHAIN_BATCH, upto: int | None = None
                 ) -> int:
    """Move up to ``limit`` of the oldest pending rows (with ``id <= upto``, if given)
    into the chain, on ``conn``, which must hold the chain lock (:func:`lock_chain`).
    Does not commit. Returns how many rows were chained."""
    oldest = select(_P.c.id).order_by(_P.c.id).limit(limit)
    if upto is not None:
        oldest = oldest.where(_P.c.id <= upto)
    taken = conn.execute(
        delete(_P).where(_P.c.id.in_(oldest.scalar_subquery()))
        .returning(_P.c.id, *(_P.c[f] for f in _PENDING_FIELDS))).all()
    if not taken:
        return 0
    taken.sort(key=lambda r: r.id)
    last = conn.execute(
        select(_T.c.seq, _T.c.hash, _T.c.ts).order_by(_T.c.seq.desc()).limit(1)).first()
    seq, prev_hash, prev_ts = (last.seq, last.hash, last.ts) if last else (0, ZERO_HASH, None)
    entries = []
    for row in taken:
        seq += 1
        entry = {f: getattr(row, f) for f in _PENDING_FIELDS}
        # Never earlier than the previous entry: ts follows seq even when the workers'
        # clocks disagree a little or a row committed late, so a time range is a run of
        # the chain.
        if prev_ts is not None and entry["ts"] < prev_ts:
            entry["ts"] = prev_ts
        entry["details"] = entry["details"] or {}
        entry["seq"], entry["prev_hash"] = seq, prev_hash
        entry["hash"] = prev_hash = compute_hash(entry)
        prev_ts = entry["ts"]
        entries.append(entry)
    _store(conn, entries)
    return len(entries)


def _store(conn: Connection, entries: list[dict[str, Any]]) -> None:
    conn.execute(insert(_T), entries)


def _chain_once(*, wait: bool | float, limit: int = CHAIN_BATCH, upto: int | None = None
                ) -> int | None:
    """One chaining transaction on its own connection: the number of rows chained, or
    ``None`` if the lock could not be taken (see :func:`lock_chain` for ``wait``)."""
    engine = _engine()
    with engine.connect() as conn:
        if not _is_sqlite(engine):
            conn = conn.execution_options(isolation_level="READ COMMITTED")
        try:
            if wait is True and not _is_sqlite(engine):
                conn.execute(text("SELECT set_config('lock_timeout', :t, true)"),
                             {"t": FLUSH_LOCK_TIMEOUT})
            if not lock_chain(conn, wait=wait):
                return None
            done = chain_locked(conn, limit=limit, upto=upto)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return done


def chain_pending(limit: int = CHAIN_BATCH) -> int:
    """Chain up to ``limit`` of the oldest pending entries if the chain lock is free right
    now (never waits for it); returns how many were chained (0 when the lock was busy).
    Safe to call from any thread or process at any time."""
    return _chain_once(wait=False, limit=limit) or 0


def pending_count(upto: int | None = None) -> int:
    """How many entries are recorded but not chained (with ``id <= upto``, if given)."""
    query = select(func.count()).select_from(_P)
    if upto is not None:
        query = query.where(_P.c.id <= upto)
    with _engine().connect() as conn:
        return conn.execute(query).scalar_one()


def _newest_pending() -> int | None:
    with _engine().connect() as conn:
        return conn.execute(select(func.max(_P.c.id))).scalar()


def flush(*, limit: int = CHAIN_BATCH) -> int:
    """Chain every entry recorded before the call, waiting for the chain lock as needed;
    returns how many entries this call chained. Entries recorded meanwhile may be
    chained too, but are not waited for.

    Raises :class:`AuditError` on SQLite while this thread's session holds an
    uncommitted write and entries are pending (it would deadlock), or the database's
    error; nothing is lost either way — unchained entries stay pending."""
    upto = _newest_pending()
    if upto is None:
        return 0
    if _is_sqlite(_engine()) and _session_holds_sqlite_write():
        raise AuditError(_DEADLOCK.format(what="flush()"))
    total = 0
    while True:
        done = _chain_once(wait=True, limit=limit, upto=upto) or 0
        total += done
        if done < limit:
            return total


# -- reading --------------------------------------------------------------------------


def head() -> tuple[int, str]:
    """(``seq``, ``hash``) of the newest entry, after chaining everything recorded before
    the call; (0, 64 zeros) for an empty log.

    Keep it outside the database (ticket, SIEM, paper) and pass it back to
    :func:`verify` as ``expected_head``: that is what detects deletion of the newest
    entries, or a rewritten tail."""
    flush()
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
    """Chain everything recorded before the call, then walk the whole chain in ``seq``
    order and report the first problem (see :func:`idp.audit.chain.walk`): altered,
    deleted, inserted or reordered entries; with ``expected_head`` also truncation or a
    rewritten tail.

    If the pending entries could not be chained (the error is logged), the chain is
    verified as it stands and ``pending`` says how many entries recorded before the call
    it does not include yet."""
    pending = 0
    try:
        flush()
    except (SQLAlchemyError, AuditError):
        log.exception("audit: pending entries could not be chained before verifying")
        pending = pending_count()
    with closing(_rows(batch=batch, as_dict=False)) as rows:
        result = walk(rows, locate=_locate, expected_head=expected_head)
    return replace(result, pending=pending) if pending else result


def export(since: float, until: float | None = None, *, batch: int = BATCH
           ) -> Iterator[dict[str, Any]]:
    """Entries with ``since <= ts < until`` in ``seq`` order, as dicts with ``hash``
    (see :func:`idp.audit.chain.export_line` for the shipping format). Everything
    recorded before the call is chained first (here, not at the first ``next``)."""
    flush()
    cond = _T.c.ts >= since
    if until is not None:
        cond = cond & (_T.c.ts < until)
    return _rows(cond, batch)
