"""Passkeys and fingerprint / face unlock (WebAuthn, with py_webauthn).

* ``/account/passkeys`` — a signed-in person lists, adds and removes credentials.
* ``/passkey/register/{options,verify}`` — binding a credential (JSON).
* ``/passkey/login/{options,verify}`` — signing in with one, usernameless or with a
  username hint (JSON), resuming the authorization request ``rid`` like ``/login``.
* ``/login/step-up/passkey/{options,verify}`` — raising the current session's level.

Every challenge lives in the shared store under the hash of its own bytes, once, for
``WEBAUTHN_CHALLENGE_TTL`` seconds: the verifier finds it from the challenge the
authenticator signed, so one never issued, already used or expired is refused before
any signature is looked at. Each record says what it was issued for and to whom (the
browser, and for binding and step-up the session ``sid``).

Binding and removing need a recent sign-in and a session at ``L3``
(``security_views.BINDING_LEVEL``): a passkey proves ``L3`` on its own, so
one bound by a password-only session would turn a stolen password into ``L3``. A lower
session gets ``403 step_up_required`` with a ``step_up_url`` back to this page.

A credential remembers the session level it was bound at: bound at ``L4`` or above it
later proves ``L4`` (internal amr ``L4key``), otherwise ``L3`` (``hwk``); see
:mod:`idp.authn.assurance`.

The sign count is advanced by one conditional UPDATE (only if the stored count is still
below the presented one): of two assertions racing with the same count — a cloned
authenticator and the real one — only one can win; the other is refused as a clone.

The JSON endpoints are CSRF-protected like every form (the page sends the token in
``X-CSRFToken``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from typing import Any, NoReturn
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    options_to_json_dict,
    parse_client_data_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .. import audit, interaction
from ..extensions import db
from ..identity.masking import mask_id_number, mask_name
from ..models import Person, WebAuthnCredential
from ..store import store
from . import assurance, password
from . import session as sso
from .security_views import BINDING_LEVEL, may_change_authenticators, step_up_url

bp = Blueprint("passkey", __name__)

_TRANSPORTS = {t.value for t in AuthenticatorTransport}
_MAX_ID = 512  # the column's width; longer ids are not ours
_CST = dt.timezone(dt.timedelta(hours=8), "CST")


class Refused(Exception):
    """A ceremony that fails: machine ``code``, readable ``message``, HTTP ``status``;
    ``reason`` (English) goes to the audit log."""

    def __init__(self, code: str, message: str, status: int = 400, reason: str | None = None):
        super().__init__(code)
        self.code, self.message, self.status, self.reason = code, message, status, reason or code


# -- relying party -------------------------------------------------------------------


def rp_id() -> str:
    cfg = current_app.config
    return cfg.get("WEBAUTHN_RP_ID") or urlsplit(cfg["ISSUER"]).hostname


def origins() -> list[str]:
    cfg = current_app.config
    configured = cfg.get("WEBAUTHN_ORIGINS") or []
    if configured:
        return [o.rstrip("/") for o in configured]
    parts = urlsplit(cfg["ISSUER"])
    return [f"{parts.scheme}://{parts.netloc}"]


def _ttl() -> int:
    return int(current_app.config.get("WEBAUTHN_CHALLENGE_TTL", 300))


# -- challenges ----------------------------------------------------------------------


def _challenge_key(challenge: bytes) -> str:
    return "webauthn:" + hashlib.sha256(challenge).hexdigest()


def _issue(purpose: str, **bound: Any) -> bytes:
    challenge = secrets.token_bytes(32)
    store().set(_challenge_key(challenge),
                # The same per-browser value that binds pending authorization requests.
                {"purpose": purpose, "bid": interaction.browser_id(), **bound}, _ttl())
    return challenge


def _redeem(credential: Any, purpose: str) -> tuple[bytes, dict[str, Any]]:
    """Take (once) the challenge this response signed; refuse one that is unknown,
    used, expired, or issued for something else or to another browser."""
    try:
        raw = base64url_to_bytes(credential["response"]["clientDataJSON"])
        challenge = parse_client_data_json(raw).challenge
    except (KeyError, TypeError, ValueError, WebAuthnException):
        raise Refused("invalid_request", _("通行密钥的响应格式不正确。"),
                      reason="malformed response") from None
    record = store().take(_challenge_key(challenge))
    if (record is None or record.get("purpose") != purpose
            or record.get("bid") != session.get("bid")):
        raise Refused("challenge_expired", _("验证已过期或已使用，请重试。"),
                      reason="unknown, used or expired challenge")
    return challenge, record


def _credential_json() -> tuple[dict[str, Any], dict[str, Any]]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("credential"), dict):
        raise Refused("invalid_request", _("通行密钥的响应格式不正确。"),
                      reason="no credential in request")
    return body, body["credential"]


def _descriptors(creds: list[WebAuthnCredential]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(c.credential_id),
        transports=[AuthenticatorTransport(t) for t in (c.transports or []) if t in _TRANSPORTS])
        for c in creds]


def credentials_of(person_id: str) -> list[WebAuthnCredential]:
    return list(db.session.scalars(
        db.select(WebAuthnCredential).where(WebAuthnCredential.person_id == person_id)
        .order_by(WebAuthnCredential.created_at)))


def proves(cred: WebAuthnCredential) -> list[str]:
    """The amr a successful assertion with ``cred`` adds to a session."""
    return ["hwk", "L4key"] if assurance.rank(cred.level) >= assurance.rank("L4") else ["hwk"]


def _assert(credential: dict[str, Any], challenge: bytes,
            person_id: str | None) -> tuple[WebAuthnCredential, Person]:
    """Verify an assertion against the stored credential; ``person_id``, when given,
    is whose credential it has to be. Returns the credential (count updated, not yet
    committed) and its person."""
    cid = credential.get("id")
    cred = None
    if isinstance(cid, str) and 0 < len(cid) <= _MAX_ID:
        cred = db.session.scalar(
            db.select(WebAuthnCredential).where(WebAuthnCredential.credential_id == cid))
    if cred is None:
        raise Refused("unknown_credential",
                      _("该通行密钥未在本平台登记（可能已被删除），请使用其他方式登录。"),
                      status=401, reason="unknown credential")
    if person_id is not None and cred.person_id != person_id:
        raise Refused("wrong_person", _("该通行密钥不属于当前登录的账号。"), status=403,
                      reason="credential of another person")
    person = db.session.get(Person, cred.person_id)
    if person is None or person.status != "active":
        raise Refused("account_unavailable", _("该账号当前无法登录，请联系客服。"), status=403,
                      reason="account not active")
    handle = credential.get("response", {}).get("userHandle")
    if handle and handle != bytes_to_base64url(person.id.encode()):
        raise Refused("wrong_person", _("通行密钥与账号不符。"), status=403,
                      reason="user handle mismatch")
    try:
        # The counter is checked below, after the signature, so that only a genuine
        # assertion from this credential can raise the clone alarm.
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=origins(), credential_public_key=base64url_to_bytes(cred.public_key),
            credential_current_sign_count=0, require_user_verification=True)
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise Refused("verification_failed",
                      _("通行密钥验证未通过，请确认在本网站上使用并完成指纹或密码验证。"),
                      status=401, reason=f"assertion rejected: {exc}") from None
    presented, now = verified.new_sign_count, time.time()
    if presented or cred.sign_count:
        # Compared in the UPDATE itself, not with the count read above: another worker
        # may have accepted an assertion with this very count since.
        moved = presented > cred.sign_count and db.session.execute(
            db.update(WebAuthnCredential)
            .where(WebAuthnCredential.id == cred.id, WebAuthnCredential.sign_count < presented)
            .values(sign_count=presented, last_used_at=now)
            .execution_options(synchronize_session=False)).rowcount == 1
        if not moved:
            _clone_suspected(cred, person, presented)
        set_committed_value(cred, "sign_count", presented)
        set_committed_value(cred, "last_used_at", now)
    else:
        cred.last_used_at = now  # an authenticator without a counter (it stays 0)
    return cred, person


def _clone_suspected(cred: WebAuthnCredential, person: Person, presented: int) -> NoReturn:
    cred_id, person_id = cred.id, person.id
    stored = db.session.scalar(db.select(WebAuthnCredential.sign_count).where(
        WebAuthnCredential.id == cred_id))
    # End the transaction of the update that found nothing to change before auditing
    # (SQLite allows one writer; the audit record must not wait for this request).
    db.session.rollback()
    audit.record("webauthn.clone_suspected", actor=person_id, subject=person_id,
                 details={"credential": cred_id, "stored_count": stored,
                          "presented_count": presented})
    raise Refused("possible_clone",
                  _("该通行密钥的使用计数异常，可能已被复制，已拒绝登录。请使用其他方式登录并删除该密钥。"),
                  status=401, reason="sign count did not increase")


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
            for c in credentials_of(person.id)]
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
    person = sess.person
    challenge = _issue("register", sid=sess.sid, person_id=person.id)
    options = generate_registration_options(
        rp_id=rp_id(), rp_name=current_app.config["WEBAUTHN_RP_NAME"],
        # An opaque handle, never the ID number; the names the authenticator shows in
        # its account picker are masked, since passkeys may sync to a cloud account.
        user_id=person.id.encode(), user_name=mask_id_number(person.id_number),
        user_display_name=mask_name(person.name), challenge=challenge, timeout=_ttl() * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=_descriptors(credentials_of(person.id)))
    return jsonify(options_to_json_dict(options))


@bp.post("/passkey/register/verify")
def register_verify():
    # Checked again as the ceremony ends (the person may have taken minutes over it):
    # the level now is the level the credential will carry.
    sess, refused = _binding_session()
    if refused is not None:
        return refused
    try:
        body, credential = _credential_json()
        challenge, record = _redeem(credential, "register")
        if record.get("sid") != sess.sid or record.get("person_id") != sess.person_id:
            raise Refused("challenge_expired", _("验证已过期或已使用，请重试。"),
                          reason="challenge of another session")
        try:
            verified = verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
                expected_origin=origins(), require_user_verification=True)
        except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
            raise Refused("verification_failed",
                          _("通行密钥登记未通过，请确认在本网站上操作并完成指纹或密码验证。"),
                          reason=f"attestation rejected: {exc}") from None
        cid = bytes_to_base64url(verified.credential_id)
        if len(cid) > _MAX_ID or db.session.scalar(db.select(WebAuthnCredential.id).where(
                WebAuthnCredential.credential_id == cid)):
            raise Refused("already_registered", _("该通行密钥已经登记过了。"),
                          reason="credential id already registered")
    except Refused as exc:
        audit.record("webauthn.register_failed", actor=sess.person_id, subject=sess.person_id,
                     details={"reason": exc.reason})
        return _json_error(exc.code, exc.message, exc.status)
    raw = credential.get("response", {}).get("transports")
    transports = [t for t in raw if t in _TRANSPORTS] if isinstance(raw, list) else []
    name = str(body.get("name") or "").strip()[:64] or _("通行密钥 %(n)d",
                                                         n=len(credentials_of(sess.person_id)) + 1)
    cred = WebAuthnCredential(person_id=sess.person_id, credential_id=cid,
                              public_key=bytes_to_base64url(verified.credential_public_key),
                              sign_count=verified.sign_count, transports=transports,
                              aaguid=verified.aaguid, level=sess.acr or "L2", name=name)
    db.session.add(cred)
    try:
        db.session.commit()
    except IntegrityError:  # the same credential bound by a parallel request just now
        db.session.rollback()
        return _json_error("already_registered", _("该通行密钥已经登记过了。"))
    audit.record("webauthn.registered", actor=sess.person_id, subject=sess.person_id,
                 details={"credential": cred.id, "level": cred.level, "aaguid": cred.aaguid,
                          "transports": transports, "sid": sess.sid})
    return jsonify(ok=True, id=cred.id, name=cred.name, level=cred.level)


# -- signing in ----------------------------------------------------------------------


@bp.post("/passkey/login/options")
def login_options():
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    hinted: list[WebAuthnCredential] = []
    allowed: list[PublicKeyCredentialDescriptor] = []
    username = body.get("username")
    if isinstance(username, str) and username.strip():
        person, problem, lock_key = password.find_person(username)
        if person is not None and problem is None and person.status == "active":
            hinted = credentials_of(person.id)
        # A name we know no credential of gets a made-up one, the same each time: an
        # empty list would tell anyone who has an account with passkeys here.
        allowed = _descriptors(hinted) if hinted else [_decoy(lock_key)]
    # With a hint, only that person's credentials count; without one the authenticator
    # offers its discoverable credentials.
    challenge = _issue("login", person_id=hinted[0].person_id if hinted else None)
    options = generate_authentication_options(
        rp_id=rp_id(), challenge=challenge, timeout=_ttl() * 1000,
        allow_credentials=allowed, user_verification=UserVerificationRequirement.REQUIRED)
    return jsonify(options_to_json_dict(options))


def _decoy(seed: str) -> PublicKeyCredentialDescriptor:
    key = current_app.config["SECRET_KEY"].encode()
    return PublicKeyCredentialDescriptor(
        id=hmac.new(key, f"passkey-decoy\x1f{seed}".encode(), hashlib.sha256).digest(),
        transports=[AuthenticatorTransport.INTERNAL])


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
        challenge, record = _redeem(credential, "login")
        cred, person = _assert(credential, challenge, record.get("person_id"))
        subject = person.id
        db.session.commit()
    except Refused as exc:
        db.session.rollback()
        return _refused(exc, purpose="login", subject=subject, client_id=cid)
    sess = sso.start(person, amr=proves(cred), channel=req.channel if req else "web")
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
    return sess is not None and passkey_reaches(sess, sess.person.assurance_level, asked)


def passkey_reaches(sess: sso.SSOSession, account_level: str | None, asked: str | None) -> bool:
    """Whether one of the session's person's credentials, added to what the session holds,
    reaches ``asked`` on an account at ``account_level``."""
    return any(assurance.meets(assurance.session_level(account_level, [*sess.amr, *proves(c)]),
                               asked)
               for c in credentials_of(sess.person_id))


def _stepup_context() -> tuple[sso.SSOSession | None, str | None, dict[str, Any] | None]:
    body = request.get_json(silent=True)
    rid = body.get("rid") if isinstance(body, dict) else None
    return sso.current(), rid, interaction.load(rid)


@bp.post("/login/step-up/passkey/options")
def stepup_options():
    sess, rid, req = _stepup_context()
    if sess is None or req is None:
        return _json_error("request_expired", _("授权请求已过期，请回到原网站重新点击登录。"))
    creds = credentials_of(sess.person_id)
    if not creds:
        return _json_error("no_credential", _("您还没有登记通行密钥。"))
    challenge = _issue("stepup", sid=sess.sid, person_id=sess.person_id, rid=rid)
    options = generate_authentication_options(
        rp_id=rp_id(), challenge=challenge, timeout=_ttl() * 1000,
        allow_credentials=_descriptors(creds),
        user_verification=UserVerificationRequirement.REQUIRED)
    return jsonify(options_to_json_dict(options))


@bp.post("/login/step-up/passkey/verify")
def stepup_verify():
    sess, rid, req = _stepup_context()
    if sess is None or req is None:
        return _json_error("request_expired", _("授权请求已过期，请回到原网站重新点击登录。"))
    client = req.client
    cid = client.client_id if client else None
    try:
        _body, credential = _credential_json()
        challenge, record = _redeem(credential, "stepup")
        if record.get("sid") != sess.sid or record.get("rid") != rid:
            raise Refused("challenge_expired", _("验证已过期或已使用，请重试。"),
                          reason="challenge of another session or request")
        cred, _person = _assert(credential, challenge, sess.person_id)
        db.session.commit()
    except Refused as exc:
        db.session.rollback()
        return _refused(exc, purpose="stepup", subject=sess.person_id, client_id=cid)
    asked = req.asked_level
    before = sess.acr
    reached = sso.elevate(sess, proves(cred))
    audit.record("stepup.success", actor=sess.person_id, subject=sess.person_id, client_id=cid,
                 details={"method": "webauthn", "credential": cred.id, "from": before,
                          "acr": reached, "asked": asked, "sid": sess.sid})
    if not assurance.meets(reached, asked):
        return _json_error("level_not_reached", _(
            "验证成功，但您的账号目前只能达到认证等级 %(reached)s，该应用要求 %(asked)s。",
            reached=reached, asked=asked), 403)
    return jsonify(ok=True, acr=reached, redirect=req.resume_url())
