"""The audit log (audit administrator): filter, page, export, verify the chain.

Times in the filter are the console's local time (UTC+8, as shown everywhere in it).
Every page read, export and verification is itself recorded (admin.audit_query)."""

from __future__ import annotations

import datetime as dt

from flask import Response, g, render_template, request, stream_with_context

from idp import audit

from .. import audit_query, auth
from ..views import CST, bp
from .common import page_arg, pages

PER_PAGE = 50
CHANNELS = ("web", "app", "kiosk", "hall", "hotline")


def _time(name: str) -> float | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return dt.datetime.fromisoformat(raw).replace(tzinfo=CST).timestamp()
    except ValueError:
        return None


def _filter() -> tuple[audit_query.Filter, dict[str, str]]:
    args = {k: (request.args.get(k) or "").strip()[:255]
            for k in ("since", "until", "event", "actor", "subject", "client_id", "channel")}
    args = {k: v for k, v in args.items() if v}
    if args.get("channel") not in CHANNELS:
        args.pop("channel", None)
    f = audit_query.Filter(since=_time("since"), until=_time("until"),
                           event=args.get("event", "")[:64] or None, actor=args.get("actor"),
                           subject=args.get("subject"), client_id=args.get("client_id"),
                           channel=args.get("channel"))
    return f, args


@bp.get("/audit")
@auth.require("audit.read")
def audit_log():
    f, args = _filter()
    number = page_arg()
    rows, total = audit_query.page(f, number, PER_PAGE, actor=g.admin_id)
    return render_template("admin/audit.html", rows=rows, total=total, page=number,
                           pages=pages(total, PER_PAGE), args=args, channels=CHANNELS,
                           events=audit_query.event_names(), verified=None,
                           head=audit.head(),
                           may_export="audit.export" in g.admin_perms,
                           may_verify="audit.verify" in g.admin_perms)


@bp.get("/audit/export")
@auth.require("audit.export")
def audit_export():
    f, _args = _filter()
    fmt = "csv" if request.args.get("format") == "csv" else "jsonl"
    lines = audit_query.export(f, fmt, actor=g.admin_id)
    mime = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return Response(stream_with_context(lines), mimetype=mime + "; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="audit.{fmt}"'})


@bp.post("/audit/verify")
@auth.require("audit.verify")
def audit_verify():
    result = audit_query.verify(actor=g.admin_id)
    f, args = _filter()
    rows, total = audit_query.page(f, 1, PER_PAGE, actor=g.admin_id)
    return render_template("admin/audit.html", rows=rows, total=total, page=1,
                           pages=pages(total, PER_PAGE), args=args, channels=CHANNELS,
                           events=audit_query.event_names(), verified=result,
                           head=(result["head"]["seq"], result["head"]["hash"]),
                           may_export="audit.export" in g.admin_perms, may_verify=True)
