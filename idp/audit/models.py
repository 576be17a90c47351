"""The ``audit_event`` table: one row per audit entry, chained by SM3; and
``audit_pending``: entries recorded but not chained yet.

See :mod:`idp.audit.chain` for how ``hash`` is computed from the other columns, and
:mod:`idp.audit.log` for how an entry goes from one table to the other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

# BIGINT on PostgreSQL (a log outlives 2**31 entries); on SQLite "INTEGER PRIMARY KEY"
# makes ``seq`` the rowid itself, so rows are stored in chain order.
SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")

# Column widths; longer values are cut to these before hashing (see ``log._clip``).
EVENT_LEN = 64
ACTOR_LEN = 255
SUBJECT_LEN = 255
CLIENT_ID_LEN = 255
IP_LEN = 64


class _EntryFields:
    """What an entry says, the same whether pending or chained."""

    ts: Mapped[float] = mapped_column(Float)
    event: Mapped[str] = mapped_column(String(EVENT_LEN))
    actor: Mapped[str] = mapped_column(String(ACTOR_LEN))
    subject: Mapped[str | None] = mapped_column(String(SUBJECT_LEN))
    client_id: Mapped[str | None] = mapped_column(String(CLIENT_ID_LEN))
    ip: Mapped[str | None] = mapped_column(String(IP_LEN))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditEvent(_EntryFields, db.Model):
    """An append-only audit entry. Written only by the chainer (:mod:`idp.audit.log`).

    ``seq`` is assigned by the writer (head + 1) under the chain lock, never by the
    database, so it has no gaps; ``prev_hash`` is the previous entry's ``hash`` (64
    zeros for seq 1). The unique constraints on ``seq`` and ``prev_hash`` make a fork
    (two entries claiming the same place) impossible even if the lock were bypassed.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("prev_hash", name="uq_audit_event_prev_hash"),
        UniqueConstraint("hash", name="uq_audit_event_hash"),
        Index("ix_audit_event_ts", "ts"),
        # The enterprise pages read one organisation's history: event + subject.
        Index("ix_audit_event_event_subject", "event", "subject"),
    )

    seq: Mapped[int] = mapped_column(SEQ_TYPE, primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditPending(_EntryFields, db.Model):
    """An audit entry recorded but not chained yet. Written only by
    :func:`idp.audit.record` (one insert, no lock); moved into ``audit_event`` in ``id``
    order, and deleted in the same transaction, by :func:`idp.audit.log.chain_pending`.

    ``details`` and the identifiers are already masked; ``ts`` is when it was recorded
    (the chain may move it forward a little so that ``ts`` follows ``seq``). On SQLite
    ``id`` is the rowid: an id can come back only once every row above it is gone, so
    pending rows are still taken in the order they were written.
    """

    __tablename__ = "audit_pending"

    id: Mapped[int] = mapped_column(SEQ_TYPE, primary_key=True, autoincrement=True)
