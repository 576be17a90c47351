"""The person's own sign-in security settings (``/account/security``): authenticator
apps (TOTP) — enrol with a QR code, confirm with a first code, list, remove.

Adding or removing an authenticator needs a sign-in at most ``SECURITY_REAUTH_SECONDS``
old, so a session cookie left behind on a shared computer cannot quietly add a factor.
"""

from __future__ import annotations

import datetime as dt
import time

import segno
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit
from ..extensions import db
from ..identity.masking import mask_name
from ..models import TotpCredential
from . import session as sso
from . import totp

bp = Blueprint("security", __name__)

_CST = dt.timezone(dt.timedelta(hours=8), "CST")
HOME = "/account/security"


def _sign_in_first():
    from ..account.views import _sign_in_first as sign_in

    return sign_in(HOME)


def _session(fresh: bool = False) -> sso.SSOSession | None:
    sess = sso.current()
    if sess is None or sess.person is None:
        return None
    if fresh and time.time() - sess.auth_time > current_app.config["SECURITY_REAUTH_SECONDS"]:
        return None
    return sess


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, _CST).strftime("%Y-%m-%d %H:%M") if ts else ""


@bp.get(HOME)
def index():
    sess = _session()
    if sess is None:
        return _sign_in_first()
    rows = [{"id": c.id, "added": _when(c.confirmed_at)} for c in totp.confirmed(sess.person_id)]
    return render_template("security.html", rows=rows, who=mask_name(sess.person.name),
                           acr=sess.acr, level=sess.person.assurance_level,
                           done=request.args.get("done"))


def _enrol_page(sess, cred: TotpCredential, error: str | None = None):
    uri = totp.provisioning_uri(sess.person, cred)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    secret = totp.secret_of(cred)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("security_totp.html", cred_id=cred.id, qr=qr, secret=grouped,
                           error=error), 400 if error else 200


@bp.post(HOME + "/totp/new")
def totp_new():
    sess = _session(fresh=True)
    if sess is None:
        return _sign_in_first()
    return _enrol_page(sess, totp.begin(sess.person))


@bp.post(HOME + "/totp/<cred_id>/confirm")
def totp_confirm(cred_id: str):
    sess = _session(fresh=True)
    if sess is None:
        return _sign_in_first()
    cred = db.session.scalar(db.select(TotpCredential).where(
        TotpCredential.id == cred_id, TotpCredential.person_id == sess.person_id,
        TotpCredential.confirmed_at.is_(None)))
    if cred is None:
        return render_template("error.html", title=_("找不到该身份验证器"),
                               detail=_("请重新添加。")), 404
    result = totp.confirm(cred, request.form.get("code", ""))
    if not result.ok:
        audit.record("totp.enrol_failed", actor=sess.person_id, subject=sess.person_id,
                     details={"credential": cred_id, "reason": result.error})
        message = (_("错误次数过多，请稍后再试。") if result.error == "locked"
                   else _("口令不正确。请核对手机时间是否准确，并输入应用中当前显示的 6 位口令。"))
        return _enrol_page(sess, cred, message)
    audit.record("totp.enrolled", actor=sess.person_id, subject=sess.person_id,
                 details={"credential": cred_id})
    return redirect(url_for("security.index", done="added"))


@bp.post(HOME + "/totp/<cred_id>/remove")
def totp_remove(cred_id: str):
    sess = _session(fresh=True)
    if sess is None:
        return _sign_in_first()
    if not totp.remove(sess.person_id, cred_id):
        return render_template("error.html", title=_("找不到该身份验证器"),
                               detail=_("它可能已被删除。")), 404
    audit.record("totp.removed", actor=sess.person_id, subject=sess.person_id,
                 details={"credential": cred_id})
    return redirect(url_for("security.index", done="removed"))
