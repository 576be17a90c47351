"""The closing pages (``/account/close``): what closing means, the confirmation (with a
recent sign-in at the account's level), and cancelling during the cooling-off period."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..authn import session as sso
from ..ui import local_time
from . import closure, recent
from .views import _sign_in_first, bp

CLOSE = "/account/close"

_REFUSALS = {
    "legal_rep": lambda: _("您是企业的法定代表人。请先办理法定代表人变更，再注销个人账号。"),
    "not_active": lambda: _("该账号当前不能注销。"),
}


def _page(error: str | None = None, status: int = 200):
    sess = sso.current()
    return render_template("account/close.html", error=error,
                           days=int(closure.cooling_seconds() // 86400),
                           closes=local_time(closure.closes_at(sess.person))), status


@bp.get("/close")
def close_page():
    refused = recent.gate(CLOSE, "close")
    if refused is not None:
        return refused
    return _page()


@bp.post("/close")
def close_request():
    refused = recent.gate(CLOSE, "close")
    if refused is not None:
        return refused
    sess = sso.current()
    if request.form.get("understood") != "yes":
        return _page(_("请勾选“我已了解注销的后果”后再提交。"), 400)
    try:
        closure.request_close(sess.person, sid=sess.sid)
    except closure.ClosureRefused as exc:
        return _page(_REFUSALS[exc.code](), 409)
    return redirect(url_for("account.index", done="close_requested"))


@bp.post("/close/cancel")
def close_cancel():
    sess = sso.current()
    if sess is None:
        return _sign_in_first("/account/")
    closure.cancel_close(sess.person)
    return redirect(url_for("account.index", done="close_cancelled"))
