"""The console's pages (``/admin/…``): the review queue, one item side by side with its
candidates, decisions, and the list of person merges.

Every decision goes through :mod:`connectors.review` / :mod:`connectors.merge` (the
``idp merge`` commands call the same functions), with the administrator's person id as
the actor. Forms are CSRF-protected by the app-wide ``CSRFProtect``. Looking a person
up by ID number is a POST, so the number is never in a URL (nor in access logs).
"""

from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from connectors import merge as person_merge
from connectors import review
from connectors import review_listing as q
from idp import audit
from idp.accounts import person_by_identifier
from idp.extensions import db
from idp.identity import InvalidCreditCode, InvalidIdNumber, parse_credit_code
from idp.models import Organisation
from idp.orgs import find_org

from . import auth, evidence, review_queue
from .rule_names import rule_name

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/static")

CST = dt.timezone(dt.timedelta(hours=8), "CST")


@bp.app_template_filter("admin_time")
def _time(ts: float | None) -> str:
    if not ts:
        return "—"
    return dt.datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M")


def state_names() -> dict[str, str]:
    return {"pending": _("待审核"), "approved": _("已批准"), "rejected": _("已驳回"),
            "merged": _("已合并"), "superseded": _("已被新数据取代"), "all": _("全部")}


@bp.get("/signin")
def signin():
    return auth.start_signin(request.args.get("next", ""))


@bp.get("/callback")
def callback():
    target, error = auth.finish_signin()
    if error is None:
        return redirect(target)
    if error == "unmet_authentication_requirements":
        detail = _("您的账号目前无法达到管理控制台要求的认证等级 L3。")
    elif error == "invalid_state":
        detail = _("登录请求已过期或不是从本页面发起的，请重新进入管理控制台。")
    else:
        detail = _("登录未完成（%(error)s）。", error=error)
    return render_template("admin/message.html", title=_("未能进入管理控制台"),
                           detail=detail), 400


@bp.get("/")
@auth.require("api_clients.own")  # every role holds it: the page then sends each home
def index():
    return redirect(auth.home_for(g.admin_perms))


def _page_arg() -> int:
    try:
        # capped: the page's offset must fit the database's integer type
        return max(1, min(int(request.args.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


def _date(name: str) -> float | None:
    raw = (request.args.get(name) or "").strip()
    try:
        return dt.datetime.fromisoformat(raw).replace(tzinfo=CST).timestamp() if raw else None
    except ValueError:
        return None


def _queue_filter() -> tuple[review_queue.QueueFilter, dict]:
    state = request.args.get("state", "pending")
    if state not in (*review.STATES, "all"):
        state = "pending"
    args = {k: (request.args.get(k) or "").strip()[:64]
            for k in ("source", "reason", "since", "until", "q")}
    args = {k: v for k, v in args.items() if v}
    f = review_queue.QueueFilter(state=state, source=args.get("source"),
                                 reason=args.get("reason"), since=_date("since"),
                                 until=_date("until"), search=args.get("q"))
    return f, {"state": state, **args}


@bp.get("/review")
@auth.require()
def queue():
    f, args = _queue_filter()
    page = _page_arg()
    rows, total = review_queue.listing(f, page)
    pages = max(1, -(-total // q.PER_PAGE))
    flashed = get_flashed_messages(with_categories=True)
    sources, reasons = q.filter_choices()
    return render_template("admin/queue.html", rows=rows, total=total, page=page, pages=pages,
                           state=f.state, source=f.source, reason=f.reason, sources=sources,
                           reasons=reasons, states=state_names(), args=args,
                           rule_name=rule_name, bulk_limit=review_queue.BULK_LIMIT,
                           may_bulk="review.decide" in g.admin_perms,
                           notices=[m for c, m in flashed if c != "batch"],
                           batch=next((m for c, m in flashed if c == "batch"), None))


@bp.post("/review/bulk")
@auth.require("review.decide")
def bulk():
    f, args = _queue_filter()
    action = request.form.get("action", "")
    raw = request.form.get("expected", "")
    expected = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else -1
    if request.form.get("confirm") != "1":
        flash(_("请勾选确认后再批量处理。"))
        return redirect(url_for(".queue", **args))
    try:
        result = review_queue.bulk(f, action, by=g.admin_id,
                                   note=request.form.get("note", "").strip()[:500],
                                   expected=expected)
    except review_queue.BulkError:
        flash(_("筛选结果已变化或不可批量处理，请刷新后重试。"))
        return redirect(url_for(".queue", **args))
    flash(_("批量处理完成：成功 %(done)d 项，未能处理 %(refused)d 项，剩余 %(left)d 项。",
            done=result.done, refused=result.refused, left=result.remaining))
    if result.done:
        flash(result.batch, "batch")  # the queue page offers to undo this batch
    return redirect(url_for(".queue", **args))


@bp.post("/review/bulk/<batch>/undo")
@auth.require("review.decide")
def bulk_undo(batch: str):
    undone = review_queue.undo_batch(batch, by=g.admin_id)
    flash(_("已撤销该批次中的 %(n)d 项决定。", n=undone))
    return redirect(url_for(".queue"))


def _render_item(item_id: int, *, found=None, error: str | None = None, status: int = 200):
    info = q.detail(item_id)
    if info is None:
        abort(404)
    return render_template("admin/item.html", d=info, it=info.item, states=state_names(),
                           evidence=evidence.for_item(item_id), rule_name=rule_name,
                           found=found, error=error, is_admin="review.merge" in g.admin_perms,
                           notices=get_flashed_messages()), status


@bp.get("/review/<int:item_id>")
@auth.require()
def item(item_id: int):
    return _render_item(item_id)


@bp.post("/review/<int:item_id>/search")
@auth.require()
def search(item_id: int):
    if review.kind(item_id) == review.ORGANISATION:
        return _search_org(item_id)
    try:
        person = person_by_identifier(request.form.get("id_number", ""), phone=False).person
    except InvalidIdNumber:
        return _render_item(item_id, error=_("证件号码格式有误。"), status=400)
    # Looking a citizen up by number is itself worth a trace: who looked, and for what.
    audit.record("admin.person_lookup", actor=g.admin_id, subject=person.id if person else None,
                 details={"item": item_id, "found": person is not None})
    if person is None:
        return _render_item(item_id, error=_("没有找到该证件号码的账号。"), status=404)
    return _render_item(item_id, found=q.person_card(person))


def _search_org(item_id: int):
    # A credit code is on every business licence: looking one up is not audited.
    try:
        code = parse_credit_code(request.form.get("uscc", "")).code
    except InvalidCreditCode:
        return _render_item(item_id, error=_("统一社会信用代码格式有误。"), status=400)
    org = find_org(code)
    if org is None:
        return _render_item(item_id, error=_("没有找到该统一社会信用代码的组织。"), status=404)
    return _render_item(item_id, found=q.org_card(org))


_DONE = {"approve": _l("已批准第 %(id)d 项。"), "reject": _l("已驳回第 %(id)d 项。"),
         "merge": _l("已将第 %(id)d 项合并到所选账号。"), "undo": _l("已撤销第 %(id)d 项的决定。")}
_ORG_MERGED = _l("已将第 %(id)d 项关联到所选组织。")


@bp.post("/review/<int:item_id>/<action>")
@auth.require()
def decide(item_id: int, action: str):
    if action not in _DONE:
        abort(404)
    note = request.form.get("note", "").strip()[:500]
    kw: dict = {"by": g.admin_id, "note": note}
    if review.kind(item_id) == review.ORGANISATION:
        # The form's choices are organisation ids (a type-92 code is shown masked, so
        # it cannot be sent back); the decision names the organisation by its code.
        # Nothing is merged but the link, so a reviewer may.
        chosen = request.form.get("org")
        org = db.session.get(Organisation, chosen) if chosen else None
        uscc = org.uscc if org else None
        if action == "merge" and not uscc:
            return _render_item(item_id, error=_("请选择要关联到的组织。"), status=400)
        if action in ("approve", "merge"):
            kw["uscc"] = uscc
    else:
        person_id = request.form.get("person_id") or None
        if action == "approve":
            kw["person_id"] = person_id
        elif action == "merge":
            if not person_id:
                return _render_item(item_id, error=_("请选择要合并到的账号。"), status=400)
            kw["person_id"] = person_id
            kw["force"] = request.form.get("force") == "1"
            if not auth.may_merge(item_id, person_id, kw["force"]):
                return _render_item(item_id,
                                    error=_("合并两个已有账号或强制合并需要管理员角色。"),
                                    status=403)
    try:
        getattr(review, action)(item_id, **kw)
    except review.ReviewError as exc:
        db.session.rollback()
        status = 400 if isinstance(exc, review.InvalidTarget) else 409
        return _render_item(item_id, error=explain(str(exc)), status=status)
    done = _ORG_MERGED if action == "merge" and "uscc" in kw else _DONE[action]
    flash(str(done) % {"id": item_id})
    return redirect(url_for(".item", item_id=item_id))


# Refusals of connectors.review / connectors.merge (English, for operators) as shown.
_ERRORS = (
    ("cannot merge a person into itself", _l("不能把账号合并到它自己。")),
    ("the two ID numbers differ",
     _l("两个账号的证件号码不同；如确为同一人，管理员可填写理由后强制合并。")),
    ("a forced merge needs a reason", _l("强制合并必须填写理由。")),
    ("the surviving person is", _l("所选账号已被合并或锁定，不能合并到该账号。")),
    ("this person was already merged", _l("该账号已被合并到其他账号。")),
    ("several candidates or no valid ID number",
     _l("有多个候选账号或没有有效证件号码，请选择要合并到的账号。")),
    ("nothing to undo", _l("该项目前没有可撤销的决定。")),
    ("nothing to merge", _l("该项目前不能合并。")),
    ("came later and involves the same persons",
     _l("之后还有涉及同一账号的合并，请先撤销那一次合并。")),
    ("not pending", _l("该项已处理，请刷新页面。")),
    ("several candidates or no valid credit code",
     _l("有多个候选组织或没有有效的统一社会信用代码，请选择要关联到的组织。")),
    ("an organisation with this credit code exists now",
     _l("已有使用该统一社会信用代码的组织，请选择关联到该组织。")),
    ("name is neither in the row nor in the registry",
     _l("旧账号和登记机关都没有该组织的名称：请先登记该组织，再关联到它。")),
    ("no organisation with this credit code", _l("没有使用该统一社会信用代码的组织。")),
    ("invalid credit code", _l("统一社会信用代码格式有误。")),
    ("the organisation is", _l("所选组织已停用，不能关联到该组织。")),
)


def explain(message: str) -> str:
    for needle, text in _ERRORS:
        if needle in message:
            return str(text)
    return _("操作未完成：%(reason)s", reason=message)


@bp.get("/merges")
@auth.require()
def merges():
    records = [(r, person_merge.counts(r)) for r in q.merge_records()]
    return render_template("admin/merges.html", records=records,
                           is_admin="review.merge" in g.admin_perms, notices=get_flashed_messages())


@bp.post("/merges/<int:record_id>/undo")
@auth.require("review.merge")
def undo_merge(record_id: int):
    try:
        person_merge.undo_merge(record_id, actor=g.admin_id)
    except person_merge.MergeError as exc:
        db.session.rollback()
        flash(explain(str(exc)))
        return redirect(url_for(".merges"))
    flash(_("已撤销第 %(id)d 次合并。", id=record_id))
    return redirect(url_for(".merges"))
