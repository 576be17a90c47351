"""The dashboard's figures, from what the provider already records: the audit log
(sign-ins, failures, lockouts, tokens, imports), the review queue and refresh tokens.

Each figure is one grouped query over a bounded time window (``audit_event.ts`` is
indexed), read in Python into hourly buckets so SQLite and PostgreSQL give the same.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.models import ReviewItem

HOURS = 24
DAYS = 7


@dataclass
class Series:
    name: str
    values: list[int]


@dataclass
class Dashboard:
    generated_at: float
    hours: list[float]  # start of each hourly bucket (unix time)
    days: list[float]
    sign_ins_by_channel: list[Series] = field(default_factory=list)
    sign_ins_by_level: list[Series] = field(default_factory=list)
    outcomes: list[Series] = field(default_factory=list)  # success / failure / locked
    tokens_by_grant: dict[str, int] = field(default_factory=dict)
    active_sessions_estimate: int = 0
    review_backlog: int = 0
    review_created: list[int] = field(default_factory=list)  # per day
    review_decided: list[int] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)
    lockouts_24h: int = 0


def _events(names: tuple[str, ...], since: float):
    return db.session.execute(select(AuditEvent.ts, AuditEvent.event, AuditEvent.details)
                              .where(AuditEvent.ts >= since, AuditEvent.event.in_(names))
                              .order_by(AuditEvent.seq)).all()


def _series(buckets: dict[str, Counter], n: int) -> list[Series]:
    return [Series(name, [counts.get(i, 0) for i in range(n)])
            for name, counts in sorted(buckets.items())]


def build(now: float | None = None) -> Dashboard:
    now = time.time() if now is None else now
    hour0 = (int(now) // 3600 - HOURS + 1) * 3600
    day0 = (int(now) // 86400 - DAYS + 1) * 86400
    dash = Dashboard(generated_at=now, hours=[hour0 + 3600 * i for i in range(HOURS)],
                     days=[day0 + 86400 * i for i in range(DAYS)])
    by_channel: dict[str, Counter] = {}
    by_level: dict[str, Counter] = {}
    outcomes: dict[str, Counter] = {"success": Counter(), "failure": Counter(),
                                    "locked": Counter()}
    for ts, event, details in _events(("login.success", "login.failure", "stepup.success"),
                                      hour0):
        slot = int((ts - hour0) // 3600)
        details = details or {}
        if event == "login.failure":
            key = "locked" if details.get("reason") == "locked" else "failure"
            outcomes[key][slot] += 1
            continue
        if event == "login.success":
            outcomes["success"][slot] += 1
            by_channel.setdefault(str(details.get("channel") or "web"), Counter())[slot] += 1
        by_level.setdefault(str(details.get("acr") or "—"), Counter())[slot] += 1
    dash.sign_ins_by_channel = _series(by_channel, HOURS)
    dash.sign_ins_by_level = _series(by_level, HOURS)
    dash.outcomes = _series(outcomes, HOURS)
    dash.lockouts_24h = sum(outcomes["locked"].values())
    grants: Counter = Counter()
    for _ts, _event, details in _events(("token.issued",), hour0):
        grants[str((details or {}).get("grant_type") or "other")] += 1
    dash.tokens_by_grant = dict(sorted(grants.items()))
    window = now - float(current_app.config["SSO_ABSOLUTE_TIMEOUT"])
    started, ended = set(), set()
    for _ts, event, details in _events(("login.success", "logout"), window):
        sid = (details or {}).get("sid")
        (started if event == "login.success" else ended).add(sid)
    dash.active_sessions_estimate = len(started - ended - {None})
    dash.review_backlog = db.session.scalar(select(db.func.count()).select_from(ReviewItem)
                                            .where(ReviewItem.state == "pending")) or 0
    created, decided = Counter(), Counter()
    for ts, done in db.session.execute(select(ReviewItem.created_at, ReviewItem.decided_at)
                                       .where((ReviewItem.created_at >= day0)
                                              | (ReviewItem.decided_at >= day0))):
        if ts and ts >= day0:
            created[int((ts - day0) // 86400)] += 1
        if done and done >= day0:
            decided[int((done - day0) // 86400)] += 1
    dash.review_created = [created.get(i, 0) for i in range(DAYS)]
    dash.review_decided = [decided.get(i, 0) for i in range(DAYS)]
    runs = db.session.execute(select(AuditEvent.ts, AuditEvent.details)
                              .where(AuditEvent.event == "legacy.import")
                              .order_by(AuditEvent.seq.desc()).limit(10)).all()
    dash.imports = [{"ts": ts, **{k: v for k, v in (details or {}).items()
                                  if isinstance(v, (int, float, str))}} for ts, details in runs]
    return dash
