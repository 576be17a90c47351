"""Passkeys and fingerprint / face unlock: the pages and JSON endpoints.

* ``/account/passkeys`` — a signed-in person lists, adds and removes credentials.
* ``/passkey/register/{options,verify}`` — binding a credential (JSON).
* ``/passkey/login/{options,verify}`` — signing in with one, usernameless or with a
  username hint (JSON), resuming the authorization request ``rid`` like ``/login``.
* ``/login/step-up/passkey/{options,verify}`` — raising the current session's level.

What the ceremonies mean (challenges, credentials, assertions, the sign count) is
:mod:`idp.authn.passkeys`; these views check who is asking, call it, audit and answer.

Binding and removing need a recent sign-in and a session at ``L3``
(``security_views.BINDING_LEVEL``): a passkey proves ``L3`` on its own, so
one bound by a password-only session would turn a stolen password into ``L3``. A lower
session gets ``403 step_up_required`` with a ``step_up_url`` back to this page.

The JSON endpoints are CSRF-protected like every form (the page sends the token in
``X-CSRFToken``).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from webauthn import verify_authentication_response

from .. import audit, interaction
from ..extensions import db
from ..identity.masking import mask_name
from ..models import WebAuthnCredential
from . import assurance, passkeys
from . import session as sso
from .passkeys import Refused
from .security_views import BINDING_LEVEL, may_change_authenticators, step_up_url

bp = Blueprint("passkey", __name__)

_CST = dt.timezone(dt.timedelta(hours=8), "CST")


def _credential_json() -> tuple[dict[str, Any], dict[str, Any]]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
        raise Refused("invalid_request", _("通行密钥的响应格式不正确。"),
                      reason="no credential in request")
    return body, body["credential"]


def _assert(credential: dict[str, Any], challenge: bytes, person_id: str | None):
    # This module's name for py_webauthn's check, looked up now (see passkeys.authenticate).
    return passkeys.authenticate(credential, challenge, person_id,
                                 verify=verify_authentication_response)


def _refused(exc: Refused, *, purpose: str, subject: str | None = None,
             client_id: str | None = None):
    audit.record("login.failure", actor=subject or "anonymous", subject=subject,
                 client_id=client_id,
                 details={"method": "webauthn", "purpose": purpose, "reason": exc.reason})
    return jsonify(error=exc.code, message=exc.message), exc.status


def _json_error(code: str, message: str, status: int = 400):
    return jsonify(error=code, message=message), status


# -- the person's own credentials ----------------------------------------------------


def _signed_in() -> sso.SSOSession | None:
    sess = sso.current()
    return sess if sess is not None and sess.person is not None else None


@bp.get("/account/passkeys")
def manage():
    sess = _signed_in()
    if sess is None:
        from ..account.views import _sign_in_first

        return _sign_in_first(request.path)
    return _manage_page(sess)


def _manage_page(sess: sso.SSOSession, status: int = 200):
    person = sess.person
    rows = [{"id": c.id, "name": c.name, "level": c.level, "created": _when(c.created_at),
             "used": _when(c.last_used_at) if c.last_used_at else None,
             "platform": "internal" in (c.transports or [])}
            for c in passkeys.credentials_of(person.id)]
    return render_template("passkeys.html", rows=rows, who=mask_name(person.name),
                           acr=sess.acr, needed=BINDING_LEVEL,
                           may_change=may_change_authenticators(sess),
                           removed=status == 200 and request.args.get("removed") == "1"), status


def _too_low(sess: sso.SSOSession, action: str, cred_id: str | None = None) -> bool:
    """Whether this session is below the level for binding or removing (and audit it)."""
    if may_change_authenticators(sess):
        return False
    audit.record("webauthn.step_up_required", actor=sess.person_id, subject=sess.person_id,
                 details={"action": action, "credential": cred_id, "acr": sess.acr,
                          "needed": BINDING_LEVEL})
    return True


def _step_up_required(sess: sso.SSOSession):
    return jsonify(error="step_up_required", step_up_url=step_up_url(url_for(
        "passkey.manage")), message=_(
        "为了您的账号安全，添加通行密钥需要认证等级 %(needed)s，您当前为 %(acr)s。请先验证身份。",
        needed=BINDING_LEVEL, acr=sess.acr)), 403


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, _CST).strftime("%Y-%m-%d %H:%M")


@bp.post("/account/passkeys/<cred_id>/remove")
def remove(cred_id: str):
    sess = _signed_in()
    if sess is None:
        return redirect(url_for("passkey.manage"))
    if time.time() - sess.auth_time > current_app.config["WEBAUTHN_REGISTER_MAX_AGE"]:
        # Like binding: a session cookie left behind must not take the person's keys away.
        from ..account.views import _sign_in_first

        return _sign_in_first(url_for("passkey.manage"))
    if _too_low(sess, "remove", cred_id):
        return _manage_page(sess, 403)
    cred = db.session.scalar(db.select(WebAuthnCredential).where(
        WebAuthnCredential.id == cred_id, WebAuthnCredential.person_id == sess.person_id))
    if cred is None:
        return render_template("error.html", title=_("找不到该通行密钥"),
                               detail=_("它可能已被删除。")), 404
    name = cred.name
    db.session.delete(cred)
    db.session.commit()
    audit.record("webauthn.removed", actor=sess.person_id, subject=sess.person_id,
                 details={"credential": cred_id, "name": name})
    return redirect(url_for("passkey.manage", removed=1))


def _binding_session():
    """The session allowed to bind a passkey now, or the JSON refusal instead: signed in,
    recently, at the binding level."""
    sess = _signed_in()
    if sess is None:
        return None, _json_error("login_required", _("请先登录后再添加通行密钥。"), 401)
    if time.time() - sess.auth_time > current_app.config["WEBAUTHN_REGISTER_MAX_AGE"]:
        return None, _json_error(
            "login_required", _("为了您的账号安全，请重新登录后再添加通行密钥。"), 401)
    if _too_low(sess, "register"):
        return None, _step_up_required(sess)
    return sess, None


@bp.post("/passkey/register/options")
def register_options():
    sess, refused = _binding_session()
    if refused is not None:
        return refused
    return jsonify(passkeys.registration_options(sess.person, sess.sid))


@bp.post("/passkey/register/verify")
def register_verify():
    # Checked again as the ceremony ends (the person may have taken minutes over it):
    # the level now is the level the credential will carry.
    sess, refused = _binding_session()
    if refused is not None:
        return refused
    try:
        body, credential = _credential_json()
        challenge, record = passkeys.redeem(credential, "register")
        if record.get("sid") != sess.sid or record.get("person_id") != sess.person_id:
            raise passkeys.expired_challenge("challenge of another session")
        verified = passkeys.verify_registration(credential, challenge)
    except Refused as exc:
        audit.record("webauthn.register_failed", actor=sess.person_id, subject=sess.person_id,
                     details={"reason": exc.reason})
        return _json_error(exc.code, exc.message, exc.status)
    cred = passkeys.bind(sess.person_id, sess.acr, verified, credential, body.get("name"))
    if cred is None:  # the same credential bound by a parallel request just now
        return _json_error("already_registered", _("该通行密钥已经登记过了。"))
    audit.record("webauthn.registered", actor=sess.person_id, subject=sess.person_id,
                 details={"credential": cred.id, "level": cred.level, "aaguid": cred.aaguid,
                          "transports": cred.transports, "sid": sess.sid})
    return jsonify(ok=True, id=cred.id, name=cred.name, level=cred.level)


# -- signing in ----------------------------------------------------------------------


@bp.post("/passkey/login/options")
def login_options():
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    return jsonify(passkeys.login_options(body.get("username")))


@bp.post("/passkey/login/verify")
def login_verify():
    body = request.get_json(silent=True)
    rid = body.get("rid") if isinstance(body, dict) else None
    req = interaction.load(rid) if isinstance(rid, str) and rid else None
    if rid and req is None:
        return _json_error("request_expired", _("登录请求已过期，请回到原网站重新点击登录。"))
    client = req.client if req else None
    cid = client.client_id if client else None
    subject = None
    try:
        _body, credential = _credential_json()
        challenge, record = passkeys.redeem(credential, "login")
        cred, person = _assert(credential, challenge, record.get("person_id"))
        subject = person.id
        db.session.commit()
    except Refused as exc:
        db.session.rollback()
        return _refused(exc, purpose="login", subject=subject, client_id=cid)
    sess = sso.start(person, amr=passkeys.proves(cred), channel=req.channel if req else "web")
    audit.record("login.success", actor=person.id, subject=person.id, client_id=cid,
                 details={"amr": assurance.public_amr(sess.amr), "acr": sess.acr,
                          "sid": sess.sid, "method": "webauthn", "credential": cred.id})
    return jsonify(ok=True, redirect=req.resume_url() if req
                   else url_for("authn.home"))


# -- step-up -------------------------------------------------------------------------


@bp.app_template_global()
def passkey_stepup_possible(asked: str | None) -> bool:
    """Whether the signed-in person holds a credential that would lift this session to
    ``asked`` (for the step-up page)."""
    sess = _signed_in()
    return sess is not None and passkeys.reaches(sess, sess.person.assurance_level, asked)


def _stepup_context() -> tuple[sso.SSOSession | None, str | None, Any]:
    body = request.get_json(silent=True)
    rid = body.get("rid") if isinstance(body, dict) else None
    return sso.current(), rid, interaction.load(rid)


@bp.post("/login/step-up/passkey/options")
def stepup_options():
    sess, rid, req = _stepup_context()
    if sess is None or req is None:
        return _json_error("request_expired", _("授权请求已过期，请回到原网站重新点击登录。"))
    creds = passkeys.credentials_of(sess.person_id)
    if not creds:
        return _json_error("no_credential", _("您还没有登记通行密钥。"))
    return jsonify(passkeys.stepup_options(creds, sid=sess.sid, person_id=sess.person_id,
                                           rid=rid))


@bp.post("/login/step-up/passkey/verify")
def stepup_verify():
    sess, rid, req = _stepup_context()
    if sess is None or req is None:
        return _json_error("request_expired", _("授权请求已过期，请回到原网站重新点击登录。"))
    client = req.client
    cid = client.client_id if client else None
    try:
        _body, credential = _credential_json()
        challenge, record = passkeys.redeem(credential, "stepup")
        if record.get("sid") != sess.sid or record.get("rid") != rid:
            raise passkeys.expired_challenge("challenge of another session or request")
        cred, _person = _assert(credential, challenge, sess.person_id)
        db.session.commit()
    except Refused as exc:
        db.session.rollback()
        return _refused(exc, purpose="stepup", subject=sess.person_id, client_id=cid)
    asked = req.asked_level
    before = sess.acr
    reached = sso.elevate(sess, passkeys.proves(cred))
    audit.record("stepup.success", actor=sess.person_id, subject=sess.person_id, client_id=cid,
                 details={"method": "webauthn", "credential": cred.id, "from": before,
                          "acr": reached, "asked": asked, "sid": sess.sid})
    if not assurance.meets(reached, asked):
        return _json_error("level_not_reached", _(
            "验证成功，但您的账号目前只能达到认证等级 %(reached)s，该应用要求 %(asked)s。",
            reached=reached, asked=asked), 403)
    return jsonify(ok=True, acr=reached, redirect=req.resume_url())
