"""The person's own sign-in security settings (``/account/security``): authenticator
apps (TOTP) — enrol with a QR code, confirm with a first code, list, remove.

Adding or removing an authenticator needs two things of the session:

1. a sign-in at most ``SECURITY_REAUTH_SECONDS`` old, so a session cookie left behind
   on a shared computer cannot quietly add a factor;
2. the level the new factor could later help prove (``BINDING_LEVEL``, ``L3``). A
   factor bound by a password-only session on a real-name account would let a stolen
   password reach ``L3`` on its own (TOTP + password, or a passkey alone) — NIST SP
   800-63B §6.1.2.1 asks for authentication at the level desired before binding. A
   lower session is offered a step-up (``/login/step-up``,
   an SMS code usually) that comes back to the page it started from.

The passkey pages (:mod:`idp.authn.webauthn_views`) use the same rule and step-up.
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
from ..interaction import request as pending_request
from ..models import TotpCredential
from . import assurance, totp
from . import session as sso

bp = Blueprint("security", __name__)

_CST = dt.timezone(dt.timedelta(hours=8), "CST")
HOME = "/account/security"
PASSKEYS = "/account/passkeys"
# Where a step-up started from these pages may return to: nowhere else.
_STEP_UP_RETURNS = (HOME, PASSKEYS)


# -- the level needed to change authenticators (shared with the passkey pages) ---------


# The session level needed to add or remove an authenticator: ``L3``, on every account.
# That means two factors in this session (NIST SP 800-63B §6.1.2.1) and a real-name
# account: with one factor enough anywhere, a stolen password could bind a factor that
# proves ``L3`` together with that password.
BINDING_LEVEL = "L3"


def may_change_authenticators(sess: sso.SSOSession) -> bool:
    return assurance.meets(sess.acr, BINDING_LEVEL)


def step_up_url(back: str) -> str:
    """A step-up to ``BINDING_LEVEL`` that returns to ``back`` (one of this area's
    pages): a pending record without a client, like the device flow's for /login."""
    # An L2 account is real-name checked on the way (its level caps the session's).
    req = pending_request.local(next=back if back in _STEP_UP_RETURNS else HOME,
                                 acr_values=BINDING_LEVEL)
    return url_for("stepup.page", rid=req.id)


@bp.post(HOME + "/step-up")
def step_up():
    """The "先验证身份" button of the security and passkey pages (a CSRF-checked form).
    A sign-in too old for changing authenticators is renewed first: the step-up adds a
    factor to a recent sign-in, it does not revive a session left behind."""
    back = request.form.get("next", "")
    back = back if back in _STEP_UP_RETURNS else HOME
    sess = _session(fresh=True)
    if sess is None:
        return _sign_in_first(back)
    if may_change_authenticators(sess):
        return redirect(back)
    return redirect(step_up_url(back))


# -- the page ---------------------------------------------------------------------------


def _sign_in_first(back: str = HOME):
    from ..account.views import _sign_in_first as sign_in

    return sign_in(back)


def _session(fresh: bool = False) -> sso.SSOSession | None:
    sess = sso.current()
    if sess is None or sess.person is None:
        return None
    if fresh and time.time() - sess.auth_time > current_app.config["SECURITY_REAUTH_SECONDS"]:
        return None
    return sess


def _when(ts: float | None) -> str:
    from ..ui import local_time  # one zone, named, for every time shown

    return local_time(ts)


def _index_page(sess, status: int = 200):
    rows = [{"id": c.id, "added": _when(c.confirmed_at)} for c in totp.confirmed(sess.person_id)]
    return render_template("security.html", rows=rows, who=mask_name(sess.person.name),
                           acr=sess.acr, level=sess.person.assurance_level,
                           needed=BINDING_LEVEL,
                           may_change=may_change_authenticators(sess),
                           done=request.args.get("done") if status == 200 else None,
                           ), status


@bp.get(HOME)
def index():
    sess = _session()
    if sess is None:
        return _sign_in_first()
    return _index_page(sess)


def _changing(action: str, cred_id: str | None = None):
    """The session allowed to add or remove an authenticator now, or the answer instead."""
    sess = _session(fresh=True)
    if sess is None:
        return None, _sign_in_first()
    if not may_change_authenticators(sess):
        audit.record("totp.step_up_required", actor=sess.person_id, subject=sess.person_id,
                     details={"action": action, "credential": cred_id, "acr": sess.acr,
                              "needed": BINDING_LEVEL})
        return None, _index_page(sess, 403)
    return sess, None


def _enrol_page(sess, cred: TotpCredential, error: str | None = None):
    uri = totp.provisioning_uri(sess.person, cred)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    secret = totp.secret_of(cred)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("security_totp.html", cred_id=cred.id, qr=qr, secret=grouped,
                           error=error), 400 if error else 200


@bp.post(HOME + "/totp/new")
def totp_new():
    sess, refused = _changing("add")
    if refused is not None:
        return refused
    return _enrol_page(sess, totp.begin(sess.person))


@bp.post(HOME + "/totp/<cred_id>/confirm")
def totp_confirm(cred_id: str):
    # Checked again here: the enrolment may have been begun in another session.
    sess, refused = _changing("add", cred_id)
    if refused is not None:
        return refused
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
                 details={"credential": cred_id, "acr": sess.acr, "sid": sess.sid})
    return redirect(url_for("security.index", done="added"))


@bp.post(HOME + "/totp/<cred_id>/remove")
def totp_remove(cred_id: str):
    sess, refused = _changing("remove", cred_id)
    if refused is not None:
        return refused
    if not totp.remove(sess.person_id, cred_id):
        return render_template("error.html", title=_("找不到该身份验证器"),
                               detail=_("它可能已被删除。")), 404
    audit.record("totp.removed", actor=sess.person_id, subject=sess.person_id,
                 details={"credential": cred_id})
    return redirect(url_for("security.index", done="removed"))
