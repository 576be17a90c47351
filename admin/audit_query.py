"""Reading the audit log for the audit administrator: filter, page, export.

Entries are already masked when recorded (:mod:`idp.audit.masking`), so what is read
here is shown as it is. Every read, export and verification by an administrator is
itself recorded (``admin.audit.*``), so the audit administrator is audited too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from idp import audit
from idp.audit.models import AuditEvent
from idp.extensions import db

EXPORT_LIMIT = 100_000  # one export at most; narrow the filter for more
CSV_FIELDS = ("seq", "ts", "event", "actor", "subject", "client_id", "ip", "details",
              "prev_hash", "hash")


@dataclass(frozen=True)
class Filter:
    since: float | None = None
    until: float | None = None
    event: str | None = None  # exact, or a prefix ending in "." (e.g. "login.")
    actor: str | None = None
    subject: str | None = None
    client_id: str | None = None
    channel: str | None = None

    def as_details(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


def _query(f: Filter):
    query = select(AuditEvent)
    if f.since is not None:
        query = query.where(AuditEvent.ts >= f.since)
    if f.until is not None:
        query = query.where(AuditEvent.ts < f.until)
    if f.event:
        query = query.where(AuditEvent.event.startswith(f.event, autoescape=True)
                            if f.event.endswith(".") else AuditEvent.event == f.event)
    for column, value in ((AuditEvent.actor, f.actor), (AuditEvent.subject, f.subject),
                          (AuditEvent.client_id, f.client_id)):
        if value:
            query = query.where(column == value)
    if f.channel:
        query = query.where(AuditEvent.details["channel"].as_string() == f.channel)
    return query


def entry(row: AuditEvent) -> dict[str, Any]:
    return {"seq": row.seq, "ts": row.ts, "event": row.event, "actor": row.actor,
            "subject": row.subject, "client_id": row.client_id, "ip": row.ip,
            "details": row.details or {}, "prev_hash": row.prev_hash, "hash": row.hash}


def page(f: Filter, number: int, per_page: int, *, actor: str) -> tuple[list[dict], int]:
    """Newest first."""
    audit.flush()
    query = _query(f)
    total = db.session.scalar(select(db.func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(query.order_by(AuditEvent.seq.desc())
                              .offset((number - 1) * per_page).limit(per_page))
    items = [entry(r) for r in rows]
    db.session.rollback()  # nothing written; lets the audit insert below go ahead on SQLite
    audit.record("admin.audit.read", actor=actor, details={"filter": f.as_details(),
                                                           "page": number})
    return items, total


def export(f: Filter, fmt: str, *, actor: str) -> Iterator[str]:
    """CSV or JSON lines, oldest first, at most ``EXPORT_LIMIT`` entries (a last line
    says so when the filter matched more)."""
    audit.flush()
    audit.record("admin.audit.exported", actor=actor,
                 details={"filter": f.as_details(), "format": fmt})
    rows = db.session.scalars(_query(f).order_by(AuditEvent.seq).limit(EXPORT_LIMIT + 1))

    def lines() -> Iterator[str]:
        n = 0
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(CSV_FIELDS)
            yield buf.getvalue()
        for row in rows:
            n += 1
            if n > EXPORT_LIMIT:
                yield (f"# truncated: more than {EXPORT_LIMIT} entries match; "
                       "narrow the filter\n")
                return
            data = entry(row)
            if fmt == "csv":
                buf = io.StringIO()
                csv.writer(buf).writerow([json.dumps(data["details"], ensure_ascii=False,
                                                     sort_keys=True) if k == "details"
                                          else data[k] for k in CSV_FIELDS])
                yield buf.getvalue()
            else:
                yield json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n"
    return lines()


def verify(*, actor: str) -> dict[str, Any]:
    result = audit.verify().as_dict()
    audit.record("admin.audit.verified", actor=actor,
                 details={"ok": result["ok"], "count": result["count"]})
    return result


def event_names() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.event).distinct()
                                   .order_by(AuditEvent.event).limit(500)))
