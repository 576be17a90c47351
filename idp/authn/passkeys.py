"""Passkeys (WebAuthn, with py_webauthn): the ceremonies, without any page or endpoint.

The JSON endpoints in :mod:`idp.authn.webauthn_views` parse requests, check sessions and
answer; what a challenge, a credential and an assertion *mean* is decided here, so the
sign-in page, the step-up page and the account's passkey page all apply one rule.

Every challenge lives in the shared store under the hash of its own bytes, once, for
``WEBAUTHN_CHALLENGE_TTL`` seconds: the verifier finds it from the challenge the
authenticator signed, so one never issued, already used or expired is refused before
any signature is looked at. Each record says what it was issued for and to whom (the
browser, and for binding and step-up the session ``sid``).

A credential remembers the session level it was bound at: bound at ``L4`` or above it
later proves ``L4`` (internal amr ``L4key``), otherwise ``L3`` (``hwk``); see
:mod:`idp.authn.assurance`.

The sign count is advanced by one conditional UPDATE (only if the stored count is still
below the presented one): of two assertions racing with the same count — a cloned
authenticator and the real one — only one can win; the other is refused as a clone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit

from flask import current_app, session
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
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

TRANSPORTS = {t.value for t in AuthenticatorTransport}
_MAX_ID = 512  # the column's width; longer ids are not ours


class Refused(Exception):
    """A ceremony that fails: machine ``code``, readable ``message``, HTTP ``status``;
    ``reason`` (English) goes to the audit log."""

    def __init__(self, code: str, message: str, status: int = 400, reason: str | None = None):
        super().__init__(code)
        self.code, self.message, self.status, self.reason = code, message, status, reason or code


def expired_challenge(reason: str) -> Refused:
    return Refused("challenge_expired", _("验证已过期或已使用，请重试。"), reason=reason)


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


def issue(purpose: str, **bound: Any) -> bytes:
    challenge = secrets.token_bytes(32)
    store().set(_challenge_key(challenge),
                # The same per-browser value that binds pending authorization requests.
                {"purpose": purpose, "bid": interaction.browser_id(), **bound}, _ttl())
    return challenge


def redeem(credential: Any, purpose: str) -> tuple[bytes, dict[str, Any]]:
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
        raise expired_challenge("unknown, used or expired challenge")
    return challenge, record


# -- credentials ---------------------------------------------------------------------


def credentials_of(person_id: str) -> list[WebAuthnCredential]:
    return list(db.session.scalars(
        db.select(WebAuthnCredential).where(WebAuthnCredential.person_id == person_id)
        .order_by(WebAuthnCredential.created_at)))


def proves(cred: WebAuthnCredential) -> list[str]:
    """The amr a successful assertion with ``cred`` adds to a session."""
    return ["hwk", "L4key"] if assurance.rank(cred.level) >= assurance.rank("L4") else ["hwk"]


def reaches(sess, account_level: str | None, asked: str | None) -> bool:
    """Whether one of the session's person's credentials, added to what the session holds,
    reaches ``asked`` on an account at ``account_level``."""
    return any(assurance.meets(assurance.session_level(account_level, [*sess.amr, *proves(c)]),
                               asked)
               for c in credentials_of(sess.person_id))


def _descriptors(creds: list[WebAuthnCredential]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(c.credential_id),
        transports=[AuthenticatorTransport(t) for t in (c.transports or []) if t in TRANSPORTS])
        for c in creds]


def _decoy(seed: str) -> PublicKeyCredentialDescriptor:
    key = current_app.config["SECRET_KEY"].encode()
    return PublicKeyCredentialDescriptor(
        id=hmac.new(key, f"passkey-decoy\x1f{seed}".encode(), hashlib.sha256).digest(),
        transports=[AuthenticatorTransport.INTERNAL])


# -- binding -------------------------------------------------------------------------


def registration_options(person: Person, sid: str) -> dict[str, Any]:
    challenge = issue("register", sid=sid, person_id=person.id)
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
    return options_to_json_dict(options)


def verify_registration(credential: dict[str, Any], challenge: bytes):
    """The attestation checked against ``challenge``; refused if it fails or names a
    credential already bound here."""
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
    return verified


def bind(person_id: str, level: str | None, verified, credential: dict[str, Any],
         name: Any) -> WebAuthnCredential | None:
    """Store a verified credential at the session ``level`` it is bound at (committed);
    None when a parallel request bound the same credential just now."""
    raw = credential.get("response", {}).get("transports")
    transports = [t for t in raw if t in TRANSPORTS] if isinstance(raw, list) else []
    name = str(name or "").strip()[:64] or _("通行密钥 %(n)d",
                                             n=len(credentials_of(person_id)) + 1)
    cred = WebAuthnCredential(person_id=person_id,
                              credential_id=bytes_to_base64url(verified.credential_id),
                              public_key=bytes_to_base64url(verified.credential_public_key),
                              sign_count=verified.sign_count, transports=transports,
                              aaguid=verified.aaguid, level=level or "L2", name=name)
    db.session.add(cred)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return cred


# -- assertions ----------------------------------------------------------------------


def _assertion_options(challenge: bytes,
                       allowed: list[PublicKeyCredentialDescriptor]) -> dict[str, Any]:
    options = generate_authentication_options(
        rp_id=rp_id(), challenge=challenge, timeout=_ttl() * 1000,
        allow_credentials=allowed, user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json_dict(options)


def login_options(username: Any) -> dict[str, Any]:
    """Options for signing in, usernameless or for the account ``username`` names."""
    hinted: list[WebAuthnCredential] = []
    allowed: list[PublicKeyCredentialDescriptor] = []
    if isinstance(username, str) and username.strip():
        person, problem, lock_key = password.find_person(username)
        if person is not None and problem is None and person.status == "active":
            hinted = credentials_of(person.id)
        # A name we know no credential of gets a made-up one, the same each time: an
        # empty list would tell anyone who has an account with passkeys here.
        allowed = _descriptors(hinted) if hinted else [_decoy(lock_key)]
    # With a hint, only that person's credentials count; without one the authenticator
    # offers its discoverable credentials.
    challenge = issue("login", person_id=hinted[0].person_id if hinted else None)
    return _assertion_options(challenge, allowed)


def stepup_options(creds: list[WebAuthnCredential], *, sid: str, person_id: str,
                   rid: str) -> dict[str, Any]:
    challenge = issue("stepup", sid=sid, person_id=person_id, rid=rid)
    return _assertion_options(challenge, _descriptors(creds))


def _credential_for(credential: dict[str, Any],
                    person_id: str | None) -> tuple[WebAuthnCredential, Person]:
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
    return cred, person


def authenticate(credential: dict[str, Any], challenge: bytes, person_id: str | None, *,
                 verify: Callable[..., Any]) -> tuple[WebAuthnCredential, Person]:
    """Verify an assertion against the stored credential; ``person_id``, when given,
    is whose credential it has to be. Returns the credential (count updated, not yet
    committed) and its person.

    ``verify`` is py_webauthn's ``verify_authentication_response``, passed by the caller
    so that a test can run a competing worker inside the check (the sign-count race)."""
    cred, person = _credential_for(credential, person_id)
    try:
        # The counter is checked below, after the signature, so that only a genuine
        # assertion from this credential can raise the clone alarm.
        verified = verify(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=origins(), credential_public_key=base64url_to_bytes(cred.public_key),
            credential_current_sign_count=0, require_user_verification=True)
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise Refused("verification_failed",
                      _("通行密钥验证未通过，请确认在本网站上使用并完成指纹或密码验证。"),
                      status=401, reason=f"assertion rejected: {exc}") from None
    _count(cred, person, verified.new_sign_count)
    return cred, person


def _count(cred: WebAuthnCredential, person: Person, presented: int) -> None:
    now = time.time()
    if not (presented or cred.sign_count):
        cred.last_used_at = now  # an authenticator without a counter (it stays 0)
        return
    # Compared in the UPDATE itself, not with the count read before: another worker
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
