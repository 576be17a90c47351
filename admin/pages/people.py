"""People and roles (security administrator): search, a person's page, the actions on
it, and who holds which admin role.

Searching by ID number or phone is a POST, so the number never appears in a URL or an
access log. A person's page is masked; "show in full" is its own audited POST with a
reason, and its answer is rendered once, never stored.
"""

from __future__ import annotations

from flask import abort, flash, g, get_flashed_messages, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp import people
from idp.models import ADMIN_ROLES

from .. import auth, roles
from ..views import bp
from .common import PER_PAGE, page_arg, pages, reason

KINDS = {"id_number": _l("证件号码"), "phone": _l("手机号码"), "name": _l("姓名"),
         "legacy": _l("旧系统账号（来源:编号）")}
STATUS = {"active": _l("正常"), "locked": _l("已锁定"), "merged": _l("已合并")}
ROLE_NAMES = {"reviewer": _l("审核员"), "admin": _l("审核管理员"),
              "system_admin": _l("系统管理员"), "security_admin": _l("安全管理员"),
              "audit_admin": _l("审计管理员")}
ACTIONS = {
    "lock": (people.lock, _l("已锁定该账号，其所有会话和令牌已失效。")),
    "unlock": (people.unlock, _l("已解锁该账号。")),
    "reset-authenticators": (people.reset_authenticators, _l("已清除该账号的动态口令和安全密钥。")),
    "end-sessions": (people.end_sessions, _l("已结束该账号的全部会话，并通知了接入应用。")),
    "reverify": (people.require_reverification, _l("已要求该账号重新进行实名核验。")),
}
_ERRORS = (("give a reason", _l("请填写理由（记入审计日志）。")),
           ("not locked", _l("该账号未被锁定。")),
           ("merged into another", _l("该账号已合并到其他账号，请锁定保留的账号。")),
           ("themselves", _l("不能给自己授予或撤销角色。")),
           ("separation of duties",
            _l("三员分立：系统管理员、安全管理员、审计管理员须由不同的人担任。")))


def explain(message: str) -> str:
    for needle, text in _ERRORS:
        if needle in message:
            return str(text)
    return _("操作未完成：%(reason)s", reason=message)


def _render_list(*, found=None, truncated=False, error=None, status=200, kind="id_number"):
    state = request.args.get("status") or None
    if state not in STATUS:
        state = None
    number = page_arg()
    rows, total = people.listing(status=state, page=number, per_page=PER_PAGE)
    return render_template("admin/people.html", rows=rows, total=total, page=number,
                           pages=pages(total), state=state, statuses=STATUS, kinds=KINDS,
                           kind=kind, found=found, truncated=truncated, error=error,
                           notices=get_flashed_messages()), status


@bp.get("/people")
@auth.require("people.read")
def people_page():
    return _render_list()


@bp.post("/people/search")
@auth.require("people.read")
def people_search():
    kind = request.form.get("kind", "id_number")
    kind = kind if kind in KINDS else "id_number"
    try:
        found, truncated = people.search(kind, request.form.get("q", ""), actor=g.admin_id)
    except people.PersonError:
        return _render_list(error=_("输入的内容不是有效的%(kind)s。", kind=KINDS[kind]), status=400,
                            kind=kind)
    return _render_list(found=found, truncated=truncated, kind=kind)


def _render_person(person_id: str, *, revealed=None, error=None, status=200):
    info = people.detail(person_id)
    if info is None:
        abort(404)
    held = sorted(roles.roles_of(person_id))
    return render_template("admin/person.html", d=info, p=info.person, statuses=STATUS,
                           revealed=revealed, error=error, held=held, role_names=ROLE_NAMES,
                           all_roles=ADMIN_ROLES, may_write="people.write" in g.admin_perms,
                           may_roles="roles.write" in g.admin_perms and person_id != g.admin_id,
                           notices=get_flashed_messages()), status


@bp.get("/people/<person_id>")
@auth.require("people.read")
def person(person_id: str):
    return _render_person(person_id)


@bp.post("/people/<person_id>/reveal")
@auth.require("people.reveal")
def person_reveal(person_id: str):
    if people.get(person_id) is None:
        abort(404)
    try:
        full = people.reveal(person_id, actor=g.admin_id, reason=reason())
    except people.PersonError as exc:
        return _render_person(person_id, error=explain(str(exc)), status=400)
    resp, status = _render_person(person_id, revealed=full)
    return resp, status, {"Cache-Control": "no-store"}


@bp.post("/people/<person_id>/<action>")
@auth.require("people.write")
def person_action(person_id: str, action: str):
    if action not in ACTIONS or people.get(person_id) is None:
        abort(404)
    fn, done = ACTIONS[action]
    try:
        fn(person_id, actor=g.admin_id, reason=reason())
    except people.PersonError as exc:
        return _render_person(person_id, error=explain(str(exc)), status=400)
    flash(str(done))
    return redirect(url_for(".person", person_id=person_id))


@bp.post("/people/<person_id>/roles")
@auth.require("roles.write")
def person_roles(person_id: str):
    target = people.get(person_id)
    role = request.form.get("role", "")
    if target is None or role not in ADMIN_ROLES:
        abort(404)
    try:
        if request.form.get("op") == "revoke":
            roles.revoke_from(target, role, by=g.admin_id, by_person=g.admin_id)
            flash(_("已撤销角色：%(role)s。", role=ROLE_NAMES[role]))
        else:
            roles.grant_to(target, role, by=g.admin_id, by_person=g.admin_id)
            flash(_("已授予角色：%(role)s。", role=ROLE_NAMES[role]))
    except roles.RoleError as exc:
        return _render_person(person_id, error=explain(str(exc)), status=409)
    return redirect(url_for(".person", person_id=person_id))


@bp.get("/roles")
@auth.require("roles.read")
def roles_page():
    from idp.identity.masking import mask_name

    rows = [(r, mask_name(p.name) if p else "—") for r, p in roles.listing()]
    return render_template("admin/roles.html", rows=rows, role_names=ROLE_NAMES,
                           notices=get_flashed_messages())
