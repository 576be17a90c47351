"""Account pages for a signed-in person.

* ``GET /account/`` — the person's own page (masked) and the organisations they may act
  for now, with links to manage those they lead or administer.
* ``GET /account/org/<uscc>`` — for the organisation's legal representative or an
  administrator only: its members, a form to appoint an agent (or, for the legal
  representative, an administrator), revocation, and the sign-in history (``org.act``).

Every appointment and revocation goes through :mod:`idp.orgs` (which audits them, and
whose ``revoke`` also ends the live tokens). Other people's names and ID numbers are
shown masked only. Forms are CSRF-protected by the app-wide ``CSRFProtect``.

The sign-in page knows nothing of this area; to come back here after signing in, the
page asked for is kept in the signed UI session and the plain sign-in's redirect to the
home page is pointed at it instead (``_return_after_login``).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, union_all

from .. import orgs
from ..audit import AuditEvent, AuditPending
from ..authn import session as sso
from ..extensions import db
from ..identity import InvalidIdNumber, parse_person_id
from ..identity.masking import mask_id_number, mask_name, mask_phone
from ..models import Client, Membership, Organisation, Person
from ..ui import local_time

bp = Blueprint("account", __name__, url_prefix="/account", static_folder="static",
               static_url_path="/static")

CST = dt.timezone(dt.timedelta(hours=8), "CST")
HISTORY_LIMIT = 50
#: How long a page asked for before signing in is remembered.
NEXT_TTL = 900
_NEXT = "account_next"

SCOPE_NAMES = {
    "all": _l("全部业务"),
    "tax": _l("税务"),
    "social-security": _l("社会保险"),
    "customs": _l("海关"),
    "market-regulation": _l("市场监管"),
    "housing": _l("住房"),
}

# What orgs.grant / orgs.revoke refuse with (English, for operators), as people read it.
_ORG_ERRORS = (
    ("no person with this ID number", _l("该证件号码尚未在本平台注册，请先请本人注册账号。")),
    ("scopes must be", _l("请至少选择一项业务范围。")),
    ("the appointment must end in the future", _l("授权截止日期不能早于今天。")),
    ("only the legal representative may appoint", _l("只有法定代表人可以任命管理员。")),
    ("role must be", _l("只能授权为管理员或经办人。")),
    ("the legal representative changes only", _l("法定代表人只能通过重新登记变更。")),
)


class _Refused(Exception):
    """A form input the page refuses, with the message to show."""


def _english() -> bool:
    return str(get_locale()) == "en"


def _role_name(role: str | None) -> str:
    names = orgs.ROLE_NAMES_EN if _english() else orgs.ROLE_NAMES
    return names.get(role or "", role or "—")


def _scope_names(scopes: list[str]) -> str:
    sep = ", " if _english() else "、"
    order = {s: i for i, s in enumerate(orgs.BUSINESS_SCOPES)}
    ranked = sorted(scopes, key=lambda s: order.get(s, len(order)))
    return sep.join(str(SCOPE_NAMES.get(s, s)) for s in ranked)


def _last_day(until: float | None) -> str:
    """The last day (China Standard Time) of a validity ending at ``until`` (exclusive)."""
    if until is None:
        return _("长期有效")
    return dt.datetime.fromtimestamp(until - 1, CST).date().isoformat()


def _status(m: Membership, now: float) -> str:
    if m.revoked_at is not None:
        return "revoked"
    if m.valid_until is not None and now >= m.valid_until:
        return "expired"
    if m.valid_from > now:
        return "pending"
    return "valid"


def _status_name(status: str) -> str:
    return {"valid": _("有效"), "expired": _("已过期"), "revoked": _("已撤销"),
            "pending": _("未生效")}[status]


# -- signing in ------------------------------------------------------------------------


def _person() -> Person | None:
    sess = sso.current()
    return sess.person if sess else None


def _sign_in_first(back: str):
    """To the sign-in page; back to ``back`` (a path in this area) afterwards."""
    session[_NEXT] = {"url": back, "at": time.time()}
    return redirect(url_for("authn.login", next=back))


def _here() -> str:
    return request.full_path if request.query_string else request.path


def _safe_local(url: str) -> bool:
    parts = urlsplit(url)
    return (not parts.scheme and not parts.netloc and url.startswith(bp.url_prefix + "/")
            and "\\" not in url and not url.startswith("//"))


@bp.after_app_request
def _return_after_login(response):
    """A successful plain sign-in sends the browser home; send it back here instead when
    it came from this area. Sign-ins for an authorization request are left alone."""
    if (request.endpoint != "authn.login" or request.method != "POST"
            or response.status_code not in (302, 303) or _NEXT not in session):
        return response
    if urlsplit(response.location or "").path != url_for("authn.home"):
        return response  # resuming an authorization request, not a plain sign-in
    target = session.pop(_NEXT, None) or {}
    url = target.get("url") if isinstance(target, dict) else None
    if url and _safe_local(url) and time.time() - float(target.get("at", 0)) < NEXT_TTL:
        response.location = url
    return response


# -- the person's own page -------------------------------------------------------------


@bp.get("/")
def index():
    person = _person()
    if person is None:
        return _sign_in_first(_here())
    rows = [{"uscc": o.uscc, "name": o.name, "role": _role_name(m.role),
             "role_code": m.role, "scopes": _scope_names(m.scopes),
             "until": _last_day(m.valid_until), "manage": m.role in ("legal_rep", "admin")}
            for m, o in orgs.memberships_of(person.id)]
    # One organisation may be listed once per appointment; the link once is enough.
    managed: set[str] = set()
    for row in rows:
        if row["manage"] and row["uscc"] in managed:
            row["manage"] = False
        elif row["manage"]:
            managed.add(row["uscc"])
    from . import closure
    from .words import level

    sess = sso.current()
    closes = closure.closes_at(person)
    return render_template("account/index.html", who=mask_name(person.name),
                           number=mask_id_number(person.id_number), rows=rows,
                           phone=mask_phone(person.phone) if person.phone else None,
                           account_level=level(person.assurance_level),
                           session_level=level(sess.acr),
                           closes=local_time(closes) if closes else None,
                           done=request.args.get("done"))


# -- the organisation's pages ----------------------------------------------------------


def _managed(person: Person, uscc: str) -> tuple[Organisation | None, str | None]:
    org = orgs.find_org(uscc)
    if org is None or org.status != "active":
        return None, None
    return org, orgs.manager_role(person.id, org)


def _forbidden():
    # The same answer whether the organisation exists or not: this page does not
    # tell anyone which credit codes are registered.
    return render_template("account/forbidden.html"), 403


@dataclass
class MemberRow:
    membership_id: str
    name: str
    id_number: str
    role: str
    role_code: str
    scopes: str
    until: str
    status: str
    status_name: str
    revocable: bool


def _member_rows(org: Organisation, viewer_role: str) -> list[MemberRow]:
    now = time.time()
    rows = []
    for m, p in orgs.members(org):
        status = _status(m, now)
        rows.append(MemberRow(
            membership_id=m.id, name=mask_name(p.name), id_number=mask_id_number(p.id_number),
            role=_role_name(m.role), role_code=m.role, scopes=_scope_names(m.scopes),
            until=_last_day(m.valid_until), status=status, status_name=_status_name(status),
            revocable=status in ("valid", "pending") and m.role in _revocable_by(viewer_role)))
    order = {"valid": 0, "pending": 1, "expired": 2, "revoked": 3}
    rows.sort(key=lambda r: order[r.status])  # stable: appointment order within each
    return rows


def _revocable_by(viewer_role: str) -> tuple[str, ...]:
    # As with appointing: administrators are the legal representative's to appoint
    # and to revoke; administrators manage agents.
    return ("admin", "agent") if viewer_role == "legal_rep" else ("agent",)


def _grantable_by(viewer_role: str) -> tuple[str, ...]:
    return ("agent", "admin") if viewer_role == "legal_rep" else ("agent",)


@dataclass
class HistoryRow:
    time: str
    name: str
    client: str
    role: str


def _history(org: Organisation, limit: int = HISTORY_LIMIT) -> list[HistoryRow]:
    """The latest ``org.act`` entries for the organisation, newest first: chained ones
    and those recorded but not chained yet, read in one statement (so an entry being
    chained meanwhile is seen exactly once) and without waiting for the chain lock."""
    subject = f"org:{org.uscc}"

    def latest(table):
        return (select(table.c.ts, table.c.actor, table.c.client_id, table.c.details)
                .where(table.c.event == "org.act", table.c.subject == subject)
                .order_by(table.c.ts.desc()).limit(limit).subquery())

    chained, pending = latest(AuditEvent.__table__), latest(AuditPending.__table__)
    both = union_all(select(chained), select(pending)).subquery()
    entries = db.session.execute(select(both).order_by(both.c.ts.desc()).limit(limit)).all()

    people = {p.id: p for p in db.session.scalars(
        select(Person).where(Person.id.in_(sorted({e.actor for e in entries}))))} if entries else {}
    client_ids = {e.client_id for e in entries if e.client_id}
    clients = {c.client_id: c for c in db.session.scalars(
        select(Client).where(Client.client_id.in_(sorted(client_ids))))} if client_ids else {}
    rows = []
    for e in entries:
        person, client = people.get(e.actor), clients.get(e.client_id)
        details = e.details if isinstance(e.details, dict) else {}
        rows.append(HistoryRow(
            time=local_time(e.ts, seconds=True, zone=False),
            name=mask_name(person.name) if person else "—",
            client=(client.name or client.client_id) if client else (e.client_id or "—"),
            role=_role_name(details.get("role"))))
    return rows


def _today() -> str:
    return dt.datetime.now(CST).date().isoformat()


def _render_org(org: Organisation, viewer_role: str, *, error: str | None = None,
                form: dict | None = None, status: int = 200):
    form = form or {}
    return render_template(
        "account/org.html", org=org, viewer_role=_role_name(viewer_role),
        members=_member_rows(org, viewer_role), history=_history(org),
        history_limit=HISTORY_LIMIT, roles=[(r, _role_name(r)) for r in _grantable_by(viewer_role)],
        scopes=[(s, SCOPE_NAMES[s]) for s in orgs.BUSINESS_SCOPES if s in SCOPE_NAMES],
        chosen_role=form.get("role", "agent"), chosen_scopes=form.get("scopes", []),
        chosen_until=form.get("until", ""), today=_today(), error=error,
        notices=get_flashed_messages()), status


@bp.get("/org/<uscc>")
def org_page(uscc: str):
    person = _person()
    if person is None:
        return _sign_in_first(_here())
    org, role = _managed(person, uscc)
    if role is None:
        return _forbidden()
    return _render_org(org, role)


def _until(text: str) -> float | None:
    """``YYYY-MM-DD``: valid through that whole day, China Standard Time (as the CLI)."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise _Refused(_("截止日期应写作“年-月-日”，例如 2027-12-31。")) from None
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=CST)
    return end.timestamp()


def _explain(exc: orgs.OrgError, id_number: str) -> str:
    text = str(exc)
    if text.startswith("invalid ID number"):
        try:
            parse_person_id(id_number)
        except InvalidIdNumber as bad:
            detail = bad.message_en if _english() else bad.message
            return _("证件号码有误：%(detail)s", detail=detail)
    for prefix, message in _ORG_ERRORS:
        if text.startswith(prefix):
            return str(message)
    return text


@bp.post("/org/<uscc>/members")
def appoint(uscc: str):
    person = _person()
    if person is None:
        return _sign_in_first(url_for(".org_page", uscc=uscc))
    org, viewer_role = _managed(person, uscc)
    if viewer_role is None:
        return _forbidden()
    id_number = request.form.get("id_number", "").strip()
    role = request.form.get("role", "agent")
    scopes = [s for s in request.form.getlist("scopes") if s]
    until_text = request.form.get("until", "").strip()
    # The ID number typed is not shown again: the page shows other people masked only.
    kept = {"role": role, "scopes": scopes, "until": until_text}
    try:
        if role not in _grantable_by(viewer_role):
            raise _Refused(_("只有法定代表人可以任命管理员。") if role == "admin"
                           else _("只能授权为管理员或经办人。"))
        until = _until(until_text)
        m = orgs.grant(org, id_number, role, scopes, until, by=person.id, by_role=viewer_role)
    except _Refused as exc:
        return _render_org(org, viewer_role, error=str(exc), form=kept, status=400)
    except orgs.OrgError as exc:
        db.session.rollback()
        return _render_org(org, viewer_role, error=_explain(exc, id_number), form=kept,
                           status=400)
    appointed = db.session.get(Person, m.person_id)
    flash(_("已授权 %(name)s（%(number)s）为%(role)s。", name=mask_name(appointed.name),
            number=mask_id_number(appointed.id_number), role=_role_name(m.role)))
    return redirect(url_for(".org_page", uscc=org.uscc))


@bp.post("/org/<uscc>/members/<membership_id>/revoke")
def revoke(uscc: str, membership_id: str):
    person = _person()
    if person is None:
        return _sign_in_first(url_for(".org_page", uscc=uscc))
    org, viewer_role = _managed(person, uscc)
    if viewer_role is None:
        return _forbidden()
    m = db.session.get(Membership, membership_id)
    if m is None or m.org_id != org.id:
        return _render_org(org, viewer_role, error=_("未找到该授权，可能已被删除。"),
                           status=404)
    if m.role not in _revocable_by(viewer_role):
        message = (_("法定代表人只能通过重新登记变更。") if m.role == "legal_rep"
                   else _("只有法定代表人可以撤销管理员。"))
        return _render_org(org, viewer_role, error=message, status=403)
    member = db.session.get(Person, m.person_id)
    who = {"name": mask_name(member.name), "number": mask_id_number(member.id_number),
           "role": _role_name(m.role)}
    if m.revoked_at is not None:
        flash(_("%(name)s（%(number)s）的%(role)s授权此前已撤销。", **who))
        return redirect(url_for(".org_page", uscc=org.uscc))
    try:
        orgs.revoke(m, by=person.id)
    except orgs.OrgError as exc:
        db.session.rollback()
        return _render_org(org, viewer_role, error=_explain(exc, ""), status=400)
    flash(_("已撤销 %(name)s（%(number)s）的%(role)s授权，其正在使用的登录凭证已同时失效。",
            **who))
    return redirect(url_for(".org_page", uscc=org.uscc))
