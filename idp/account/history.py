"""The person's own sign-in history (``/account/history``): their audit entries of the
last ``ACCOUNT_HISTORY_DAYS`` days — time, what happened, channel, method, level,
relying party, result — newest first, ``ACCOUNT_HISTORY_PAGE`` to a page.

Read from both audit tables (chained and not chained yet) in one statement, as the
enterprise page's history is. What the entries hold was masked when recorded; the
network is shown as coarsely as the session list shows it."""

from __future__ import annotations

import time

from flask import current_app, render_template, request
from sqlalchemy import func, select, union_all

from ..audit import AuditEvent, AuditPending
from ..authn import session as sso
from ..devices import coarse_network
from ..extensions import db
from ..models import Client
from ..ui import local_time
from . import words
from .views import _sign_in_first, bp


def _entries(person_id: str, since: float):
    def mine(table):
        return select(table.c.ts, table.c.event, table.c.client_id, table.c.ip,
                      table.c.details).where(table.c.subject == person_id,
                                             table.c.ts >= since,
                                             table.c.event.in_(words.HISTORY_EVENTS))

    return union_all(mine(AuditEvent.__table__), mine(AuditPending.__table__)).subquery()


def _page_number() -> int:
    text = request.args.get("page", "1")
    return max(1, min(int(text), 10_000)) if text.isdigit() and len(text) < 6 else 1


def _row(entry, clients: dict) -> dict:
    details = entry.details if isinstance(entry.details, dict) else {}
    client = clients.get(entry.client_id)
    network = coarse_network(entry.ip)
    channel = details.get("channel") or (client.channel if client else "web")
    return {"time": local_time(entry.ts, seconds=True), "what": words.event(entry.event),
            "channel": words.channel(channel),
            "method": words.methods(details.get("amr") or ([details["method"]]
                                                          if details.get("method") else [])),
            "level": words.level(details.get("acr") or details.get("to")),
            "client": (client.name or client.client_id) if client else None,
            "network": network[1] if network else None,
            "ok": entry.event not in words.FAILURES}


@bp.get("/history")
def history_page():
    sess = sso.current()
    if sess is None:
        return _sign_in_first("/account/history")
    cfg = current_app.config
    size = int(cfg["ACCOUNT_HISTORY_PAGE"])
    days = int(cfg["ACCOUNT_HISTORY_DAYS"])
    both = _entries(sess.person_id, time.time() - days * 86400)
    total = db.session.scalar(select(func.count()).select_from(both)) or 0
    pages = max(1, -(-total // size))
    page = min(_page_number(), pages)
    entries = db.session.execute(select(both).order_by(both.c.ts.desc())
                                 .offset((page - 1) * size).limit(size)).all()
    ids = sorted({e.client_id for e in entries if e.client_id})
    clients = {c.client_id: c for c in db.session.scalars(
        select(Client).where(Client.client_id.in_(ids)))} if ids else {}
    return render_template("account/history.html", rows=[_row(e, clients) for e in entries],
                           page=page, pages=pages, total=total, days=days)
