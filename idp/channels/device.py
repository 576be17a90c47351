"""Device authorization grant (RFC 8628): kiosks without a card reader, TV-like screens.

The screen asks ``/device_authorization`` for a pair of codes, shows the short user
code (and ``verification_uri_complete`` as a QR code) and polls ``/token``. The person
opens ``/device`` on their phone, signs in as usual, checks the code, the application
and what it asks for, and approves or denies. The tokens then say how *that* sign-in
was made (its ``acr``/``amr``) and, in ``channel``, where they are used.

Everything lives in the shared store, keyed by a hash of the device code (a store dump
gives nobody a device code that works) and by the normalised user code:

- ``device:<sha256(device_code)>``  the request: client, scope, state, the approval;
- ``device_uc:<USERCODE>``          user code -> device key, until it is decided;
- ``device_used:<hash>``            set once when tokens are issued (single use);
- ``device_poll:<hash>``            last poll time and current interval (slow_down);
- ``device_ucfail:…``               wrong user codes per person and per address;
- ``device_ucpeek:…``               codes looked up by a link (GET), likewise.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, UnauthorizedClientError
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCredentialDict
from authlib.oauth2.rfc8628 import DeviceCodeGrant as _DeviceCodeGrant
from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from .. import audit, policy, ratelimit
from ..authn import session as sso
from ..clients import DEVICE_CODE, find_client
from ..errors import SlowDownError
from ..extensions import csrf
from ..identity import normalize_identifier
from ..identity.masking import mask_id_number, mask_name
from ..interaction import request as pending_request
from ..oidc import metadata
from ..oidc.claims import describe_scopes
from ..oidc.grants import ALL_METHODS, OpenIDToken, PolicyTokenResponse, active_person
from ..oidc.subject import new_subject
from ..oidc.tokens import issuer
from ..store import store

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), no 0/O or 1/I
USER_CODE_LENGTH = 8

bp = Blueprint("device", __name__)


# ---------------------------------------------------------------- codes and records

def normalise_user_code(text: str | None) -> str | None:
    """``wdjb-mjht``, ``WDJB MJHT`` and full-width forms all mean ``WDJBMJHT``; anything
    not 8 letters of the alphabet is no user code."""
    if not text or len(text) > 32:
        return None
    code = normalize_identifier(text)
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code


def display_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def _hash(device_code: str) -> str:
    return hashlib.sha256(device_code.encode()).hexdigest()


def _cfg(name: str) -> Any:
    return current_app.config[name]


def _record_ttl(rec: dict[str, Any]) -> float:
    # Kept a while past expiry, so a late poll hears expired_token, not invalid_grant.
    return max(1.0, rec["expires_at"] - time.time()) + 300


def _load_by_user_code(code: str) -> tuple[str, dict[str, Any]] | None:
    h = store().get(f"device_uc:{code}")
    if not isinstance(h, str):
        return None
    rec = store().get(f"device:{h}")
    if rec is None or rec.get("state") != "pending" or rec["expires_at"] <= time.time():
        return None
    return h, rec


# ---------------------------------------------------------------- protocol

class DeviceAuthorization(DeviceAuthorizationEndpoint):
    CLIENT_AUTH_METHODS = ALL_METHODS

    @property
    def EXPIRES_IN(self) -> int:  # noqa: N802 - Authlib's name
        return int(_cfg("DEVICE_CODE_TTL"))

    @property
    def INTERVAL(self) -> int:  # noqa: N802 - Authlib's name
        return int(_cfg("DEVICE_POLL_INTERVAL"))

    def create_endpoint_response(self, request):
        # Counted per address before anything else, whoever calls the endpoint (the
        # kiosk demo calls it directly): a public client needs no credentials, and every
        # answer is a code pair the store keeps for DEVICE_CODE_TTL.
        if ratelimit.exceeded("device_authz", int(_cfg("DEVICE_AUTHZ_PER_MINUTE")), 60):
            raise SlowDownError("Too many device authorization requests from this "
                                "address; wait a minute.", retry_after=60)
        return super().create_endpoint_response(request)

    def authenticate_client(self, request):
        # RFC 8628 §3.1: the client authenticates as it would at the token endpoint,
        # public clients included.
        client = self.server.authenticate_client(request, self.CLIENT_AUTH_METHODS, "token")
        if not policy.may_use_grant(client, DEVICE_CODE):
            raise UnauthorizedClientError(
                description="The client is not registered for the device code grant.")
        request.client = client
        return client

    def generate_user_code(self) -> str:
        # Reserve the code at once so two pending requests never share one; the
        # reservation is pointed at the device record in save_device_credential.
        for _attempt in range(20):
            code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
            if store().add(f"device_uc:{code}", "", self.EXPIRES_IN):
                return display_user_code(code)
        raise RuntimeError("no free user code")  # 20 collisions in 2.56e10: store broken

    def generate_device_code(self) -> str:
        return secrets.token_urlsafe(32)

    def get_verification_uri(self) -> str:
        return issuer() + "/device"

    def save_device_credential(self, client_id, scope, data):
        client = find_client(client_id)
        code = normalise_user_code(data["user_code"])
        h = _hash(data["device_code"])
        rec = {"client_id": client_id, "scope": client.get_allowed_scope(scope or ""),
               "user_code": code, "expires_at": time.time() + data["expires_in"],
               "state": "pending", "channel": policy.device_channel(client)}
        store().set(f"device:{h}", rec, _record_ttl(rec))
        store().set(f"device_uc:{code}", h, data["expires_in"])
        audit.record("device.authorization", actor=client_id, client_id=client_id,
                     details={"scope": rec["scope"], "expires_in": data["expires_in"]})


class DeviceCodeGrant(PolicyTokenResponse, _DeviceCodeGrant):
    """Tokens for an approved device code; a kiosk — a shared screen the next person
    walks up to — never gets a refresh token, whatever its registration says
    (:func:`idp.policy.issues_refresh_token`)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def authenticate_token_endpoint_client(self):
        client = super().authenticate_token_endpoint_client()
        self.request.client = client  # for query_device_credential's ownership check
        return client

    def query_device_credential(self, device_code):
        if not isinstance(device_code, str) or len(device_code) > 128:
            raise InvalidGrantError(description="Unknown device code.")
        h = _hash(device_code)
        rec = store().get(f"device:{h}")
        if rec is None:
            raise InvalidGrantError(description="Unknown or expired device code.")
        if store().get(f"device_used:{h}") is not None:
            raise InvalidGrantError(description="The device code has already been used.")
        if rec["client_id"] != self.request.client.get_client_id():
            # RFC 6749 §5.2: issued to another client.
            raise InvalidGrantError(description="The device code was issued to another client.")
        self._dkey, self._record = h, rec
        return DeviceCredentialDict(rec)

    def query_user_grant(self, user_code):
        rec = self._record
        if rec["state"] == "pending":
            return None
        if rec["state"] == "denied":
            return None, False
        # Approved: exactly one poll gets the tokens, even when two race.
        if not store().add(f"device_used:{self._dkey}", 1, _record_ttl(rec)):
            raise InvalidGrantError(description="The device code has already been used.")
        person = active_person(rec["person_id"])
        if person is None:
            raise InvalidGrantError(description="The approving account is no longer active.")
        return new_subject(self.request.client, person, auth_time=rec["auth_time"],
                           acr=rec.get("acr"), amr=rec.get("amr") or [],
                           channel=rec.get("channel")), True

    def token_scope(self) -> str:
        return self.request.credential.get_scope()

    def sign_in_channel(self) -> str | None:
        return self._record.get("channel")

    def should_slow_down(self, credential):
        """RFC 8628 §3.5: polling faster than the interval answers slow_down, and the
        interval grows by 5 seconds for this and every later poll."""
        key = f"device_poll:{self._dkey}"
        now = time.time()
        seen = store().get(key) or {"last": 0.0, "interval": int(_cfg("DEVICE_POLL_INTERVAL"))}
        slow = now - seen["last"] < seen["interval"]
        if slow:
            seen["interval"] += 5
        seen["last"] = now
        store().set(key, seen, _record_ttl(self._record))
        return slow


# ---------------------------------------------------------------- the person's page

def _counters(kind: str, person_id: str) -> tuple[str, str]:
    return (f"device_{kind}:p:{person_id}", f"device_{kind}:ip:{request.remote_addr}")


def _blocked(person_id: str) -> bool:
    """Read-only: whether this person or address has used up its wrong codes."""
    limit = int(_cfg("DEVICE_USER_CODE_ATTEMPTS"))
    return any(int(store().get(k) or 0) >= limit for k in _counters("ucfail", person_id))


def _over_budget(kind: str, person_id: str) -> bool:
    """Count first, then compare: the store's increment is atomic, so each of many
    parallel requests gets its own number and no more than the limit are answered
    (a read, then a later increment, would let a burst through before any counted)."""
    limit = int(_cfg("DEVICE_USER_CODE_ATTEMPTS"))
    window = int(_cfg("DEVICE_USER_CODE_WINDOW"))
    counts = [store().incr(k, window) for k in _counters(kind, person_id)]
    return max(counts) > limit


def _entry_page(error: str | None = None, code: str = "", status: int = 200):
    return render_template("device_entry.html", error=error, user_code=code), status


def _sign_in_first(code: str | None):
    """No pending authorization here: a small record sends /login back to this page."""
    back = url_for("device.page", user_code=display_user_code(code)) if code else \
        url_for("device.page")
    return redirect(url_for("authn.login", rid=pending_request.local(next=back).id))


def _refused(sess):
    audit.record("device.user_code.blocked", actor=sess.person_id, subject=sess.person_id)
    return None, _entry_page(_("输入错误次数过多，请稍后再试。"), status=429)


def _lookup(sess, typed: str):
    """The pending request for a code the person submitted (a POST, so CSRF-checked:
    only the signed-in person can make one); a wrong code counts. (found, page)."""
    code = normalise_user_code(typed)
    found = _load_by_user_code(code) if code else None
    if found is None:
        if _over_budget("ucfail", sess.person_id):
            return _refused(sess)
        audit.record("device.user_code.failed", actor=sess.person_id, subject=sess.person_id)
        return None, _entry_page(_("验证码无效或已过期，请核对设备屏幕上的验证码。"),
                                 typed[:32], 400)
    if _blocked(sess.person_id):
        return _refused(sess)
    return (code, *found), None


def _preview(sess, typed: str):
    """``verification_uri_complete`` opened by a link (GET). Any page on the web can make
    a signed-in browser follow such a link, so it never counts as a wrong code — else a
    third party could lock the person out. Nor may it become a free way to test codes:
    previews have a budget of their own, and past it the code is only filled in for
    the person to submit. (found, page)."""
    if _blocked(sess.person_id):
        return _refused(sess)
    code = normalise_user_code(typed)
    if code is not None and _over_budget("ucpeek", sess.person_id):
        return None, _entry_page(code=typed[:32])
    found = _load_by_user_code(code) if code else None
    if found is None:
        return None, _entry_page(_("验证码无效或已过期，请核对设备屏幕上的验证码。"),
                                 typed[:32], 400)
    return (code, *found), None


@bp.route("/device", methods=["GET", "POST"])
def page():
    typed = request.values.get("user_code", "")
    sess = sso.current()
    if sess is None:
        return _sign_in_first(normalise_user_code(typed))
    if request.method == "GET" and not typed:
        return _entry_page()
    found, problem = (_preview if request.method == "GET" else _lookup)(sess, typed)
    if problem is not None:
        return problem
    code, h, rec = found
    client = find_client(rec["client_id"])
    if client is None:
        return _entry_page(_("发起请求的应用已不存在。"), status=400)
    decision = request.form.get("decision") if request.method == "POST" else None
    if decision not in ("allow", "deny"):
        person = sess.person
        return render_template("device_confirm.html", user_code=display_user_code(code),
                               client=client, items=describe_scopes(rec["scope"]),
                               who=mask_name(person.name),
                               number=mask_id_number(person.id_number))
    # Decide once: a second tab or a double tap changes nothing.
    if not store().add(f"device_decided:{h}", 1, _record_ttl(rec)):
        return _entry_page(_("该请求已处理。"), status=400)
    rec.update(state="approved" if decision == "allow" else "denied",
               person_id=sess.person_id, auth_time=sess.auth_time, acr=sess.acr,
               amr=list(sess.amr), decided_at=time.time())
    store().set(f"device:{h}", rec, _record_ttl(rec))
    store().delete(f"device_uc:{code}")
    audit.record("device.approved" if decision == "allow" else "device.denied",
                 actor=sess.person_id, subject=sess.person_id, client_id=client.client_id,
                 details={"scope": rec["scope"], "acr": sess.acr, "channel": rec["channel"]})
    return render_template("device_done.html", approved=decision == "allow", client=client)


@bp.post("/device_authorization")
@csrf.exempt
def device_authorization():
    return current_app.extensions["idp.oauth"].create_endpoint_response(
        DeviceAuthorization.ENDPOINT_NAME)


def register(app, server) -> None:
    server.register_endpoint(DeviceAuthorization)
    server.register_grant(DeviceCodeGrant, [OpenIDToken()])
    app.register_blueprint(bp)
    base = app.config["ISSUER"]
    metadata.publish(app, device_authorization_endpoint=base + "/device_authorization",
                     grant_types_supported=[DEVICE_CODE])
