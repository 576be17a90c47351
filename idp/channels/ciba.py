"""Service-hall counters and telephone hotlines: CIBA, poll mode, with the clerk in ``act``.

A counter clerk or hotline agent knows who the citizen says they are (an ID number or a
phone) but must never see their password. The clerk's application asks the provider
(OpenID Connect Client-Initiated Backchannel Authentication Core 1.0) to have the
citizen approve on their own signed-in app; the citizen sees the binding message the
clerk read out, approves, and the application polls the token endpoint for tokens about
the citizen that name the clerk in ``act`` (RFC 8693 §4.1 shape).

Why the backchannel authentication endpoint (``/bc-authorize``) is written here by
hand: Authlib implements no part of CIBA. The endpoint still authenticates the client
through Authlib (``server.authenticate_client``, the token endpoint's methods and
``private_key_jwt``), raises Authlib's OAuth errors and answers with its error
responses. The token part *is* an Authlib grant (:class:`CibaGrant`) registered on the
server, so client authentication, token generation, ``save_token`` (audit with ``act``,
refresh-token rows) and the ID token (:class:`~idp.oidc.grants.OpenIDToken`, the
same claims as the code and refresh grants) are the ones every other flow uses.

Where the app is not at hand, a hotline agent may use an SMS read-back instead
(``/bc-authorize/<auth_req_id>/sms-code``): a code goes to the citizen's registered
phone, the citizen reads it back, the agent types it in. One possession factor: the
tokens say ``amr ["sms"]`` and at most ``L2``.

At a service-hall counter the clerk also holds the citizen's ID card in hand. A hall
client may say so with ``in_person_check=document``: the approval on the app then proves
the account holder is the person standing there, the tokens say ``amr`` … ``"counter"``
and ``L5`` ("in person at a counter"), and the account records that level with method
``counter`` and the clerk as the one who verified it. Hotlines cannot vouch for this.

Poll mode, and ping mode (:mod:`idp.channels.ciba_ping`) for clients registered with
``backchannel_token_delivery_mode`` ``ping``; ``user_code`` is not supported
(``backchannel_user_code_parameter_supported`` false).
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc8628 import AuthorizationPendingError, ExpiredTokenError, SlowDownError
from flask import Blueprint, current_app, jsonify, request

from .. import audit, policy
from ..accounts import person_by_identifier, raise_level
from ..authn import assurance
from ..clients import CIBA
from ..errors import TemporarilyUnavailableError, UnmetAuthenticationRequirementsError
from ..extensions import csrf
from ..identity import InvalidIdNumber, InvalidPhone
from ..identity.masking import mask_phone
from ..models import Person
from ..oidc import metadata
from ..oidc.grants import (
    ALL_METHODS,
    CONFIDENTIAL_METHODS,
    OpenIDToken,
    PolicyTokenResponse,
    active_person,
)
from ..oidc.subject import Subject, new_subject
from ..store import store
from . import approvals, ciba_ping

bp = Blueprint("ciba", __name__)

MAX_BINDING_MESSAGE = 64
MAX_ACTING_PARTY = 64


class UnknownUserIdError(OAuth2Error):
    error = "unknown_user_id"
    description = "No person can be identified from the hint."


class InvalidBindingMessageError(OAuth2Error):
    error = "invalid_binding_message"


class SmsNotSentError(OAuth2Error):
    """The code was not sent (rate limit or gateway); 429 with Retry-After when limited."""

    error = "temporarily_unavailable"

    def __init__(self, reason: str | None, retry_after: int | None):
        limited = reason == "rate_limited"
        super().__init__("Too many codes for this phone; try again later." if limited
                         else "The SMS could not be sent; try again later.",
                         status_code=429 if limited else 503)
        self.retry_after = retry_after

    def get_headers(self):
        headers = super().get_headers()
        if self.retry_after:
            headers.append(("Retry-After", str(self.retry_after)))
        return headers


class WrongSmsCodeError(InvalidGrantError):
    """A wrong code: ``tries_left`` says how many more the agent may type; at none the
    code is dead and a new one must be sent."""

    def __init__(self, reason: str | None, tries_left: int | None):
        text = {"expired": "No valid code: send a new one.",
                "too_many": "Too many wrong codes: send a new one."}.get(
                    reason or "", "The code is wrong.")
        super().__init__(text)
        self.reason = reason
        self.tries_left = tries_left

    def get_body(self):
        body = super().get_body()
        if self.tries_left is not None:
            body.append(("tries_left", self.tries_left))
        return body


def _server():
    return current_app.extensions["idp.oauth"]


def _cfg(name: str) -> int:
    return int(current_app.config[name])


# -- the backchannel authentication endpoint ---------------------------------------


def _authenticate(req):
    """The client, authenticated as at the token endpoint (CIBA §7.1). Every method is
    tried, ``none`` too, so that a public client is told it may not use CIBA rather
    than that it failed to authenticate."""
    client = _server().authenticate_client(req, ALL_METHODS, endpoint="token")
    req.client = client
    if client.is_public:
        raise UnauthorizedClientError("CIBA is for confidential clients only.")
    if not policy.may_use_grant(client, CIBA):
        raise UnauthorizedClientError("The client is not registered for CIBA "
                                      "(a hall or hotline client with the CIBA grant type).")
    return client


def _param(req, name: str) -> str | None:
    values = req.payload.datalist.get(name) or []
    if len(values) > 1:
        raise InvalidRequestError(f"The '{name}' parameter is repeated.")
    value = values[0] if values else None
    return value if value not in (None, "") else None


def _find_person(hint: str) -> Person:
    """The person an ID number (any written form) or a mainland mobile number names (a
    phone shared by two accounts names nobody in particular)."""
    try:
        person = person_by_identifier(hint).person
    except (InvalidIdNumber, InvalidPhone):
        raise UnknownUserIdError() from None
    if person is None:
        raise UnknownUserIdError()
    if person.status != "active":
        raise AccessDeniedError("The person's account cannot be used.", status_code=403)
    return person


# Lookups that named nobody (or nobody usable), per client and window
# (CIBA_UNKNOWN_HINT_LIMIT / _WINDOW). ID numbers are structured (region, birth date,
# sequence, check digit) and phones are dense, so a hall or hotline client — or
# whoever holds its credentials — could otherwise list who has an account; past the
# limit it looks up nobody until the window ends.
class TooManyUnknownHintsError(TemporarilyUnavailableError):
    def __init__(self, retry_after: float):
        super().__init__("Too many requests for unknown users; try again later.", retry_after)


class TooManyPendingError(TemporarilyUnavailableError):
    def __init__(self, retry_after: int):
        super().__init__("Too many requests are already waiting for this person; wait for "
                         "them to be answered.", retry_after)


def _hint_window(client) -> tuple[str, float]:
    """(key, end) of the client's current window. Its counters are named by the window's
    start, so they end together and a new window starts from nothing."""
    base = f"ciba_unknown:{client.client_id}"
    window, now = _cfg("CIBA_UNKNOWN_HINT_WINDOW"), time.time()
    start = now if store().add(f"{base}:start", now, window) else store().get(f"{base}:start")
    start = float(start) if start is not None else now  # it ended just now
    return f"{base}:{start:.6f}", start + window


def _take_hint_slot(client) -> tuple[str, float]:
    """Count this lookup as a miss before it is made; a lookup that names a usable person
    gives its slot back (:func:`_count_hit`). Misses are slots taken minus hits.

    A read of the count followed by an increment after the answer would let a burst of
    parallel requests all read the same count and all be answered. Here each lookup's
    slot is one atomic increment, and the hits are read before it, so each hit that is
    subtracted was counted before this slot was taken: parallel lookups may be refused
    a little early, but no more than the limit of misses are ever answered."""
    key, end = _hint_window(client)
    hits = int(store().get(f"{key}:hits") or 0)
    slots = store().incr(f"{key}:slots", max(1.0, end - time.time()))
    if slots - hits > _cfg("CIBA_UNKNOWN_HINT_LIMIT"):
        raise TooManyUnknownHintsError(end - time.time())
    return key, end


def _count_hit(slot: tuple[str, float]) -> None:
    key, end = slot
    store().incr(f"{key}:hits", max(1.0, end - time.time()))


def _admit(a: approvals.Approval) -> None:
    """Keep ``a`` only if fewer than CIBA_MAX_PENDING_PER_PERSON requests of the same
    client were waiting on the person before it; else withdraw it and refuse.

    A clerk pushing prompt after prompt can wear a citizen down until one is approved
    to make them stop. The request is made first and counted after, in creation order,
    so requests racing from several workers cannot all slip under the cap: each sees
    every one made before it."""
    cap = _cfg("CIBA_MAX_PENDING_PER_PERSON")
    ahead = [p for p in approvals.pending_for(a.person_id or "")
             if p.kind == "ciba" and p.client_id == a.client_id and p.id != a.id
             and (p.created, p.id) < (a.created, a.id)]
    if len(ahead) >= cap:
        approvals.withdraw(a.id)
        raise TooManyPendingError(min(p.expires for p in ahead) - time.time())


def _binding_message(value: str | None) -> str:
    # Read out by the clerk and shown on the citizen's app: short, one line, printable.
    if value is None or not value.strip():
        raise InvalidBindingMessageError("A binding_message is required for hall and hotline "
                                         "requests.")
    value = value.strip()
    if len(value) > MAX_BINDING_MESSAGE or not value.isprintable():
        raise InvalidBindingMessageError(
            f"The binding_message must be printable and at most {MAX_BINDING_MESSAGE} "
            f"characters.")
    return value


def _acting_party(value: str | None) -> str:
    if value is None:
        raise InvalidRequestError("The 'acting_party' parameter (the clerk's or agent's staff "
                                  "id) is required.")
    if len(value) > MAX_ACTING_PARTY or not value.isprintable() or any(
            c.isspace() for c in value):
        raise InvalidRequestError(f"'acting_party' must be at most {MAX_ACTING_PARTY} printable "
                                  f"characters without spaces.")
    return value


def _expiry(value: str | None) -> int:
    if value is None:
        return _cfg("CIBA_EXPIRES_IN")
    if not value.isascii() or not value.isdigit() or int(value) <= 0:
        raise InvalidRequestError("'requested_expiry' must be a positive whole number of "
                                  "seconds.")
    return min(int(value), _cfg("CIBA_MAX_EXPIRES_IN"))


def _validate(req, client) -> dict[str, Any]:
    if _param(req, "request") is not None:
        raise InvalidRequestError("Signed authentication requests are not supported.")
    scope = _param(req, "scope")
    if scope is None:
        raise InvalidRequestError("The 'scope' parameter is required.")
    if "openid" not in scope.split():
        raise InvalidScopeError("The scope must contain 'openid'.")
    _server().validate_requested_scope(scope)
    hints = [h for h in ("login_hint", "login_hint_token", "id_token_hint")
             if _param(req, h) is not None]
    if len(hints) != 1:
        raise InvalidRequestError("Exactly one of login_hint, login_hint_token and "
                                  "id_token_hint is required.")
    if hints[0] != "login_hint":
        raise InvalidRequestError(f"'{hints[0]}' is not supported; send the ID number or "
                                  f"phone as login_hint.")
    binding = _binding_message(_param(req, "binding_message"))
    staff = _acting_party(_param(req, "acting_party"))
    expires_in = _expiry(_param(req, "requested_expiry"))
    acr_asked = assurance.required_level(_param(req, "acr_values"))
    in_person = _param(req, "in_person_check")
    if in_person is not None:
        if in_person != "document":
            raise InvalidRequestError("'in_person_check' must be 'document'.")
        if client.channel != "hall":
            raise InvalidRequestError("Only service-hall counters can vouch for an in-person "
                                      "document check.")
        if not _may_check_in_person(client):
            # It raises the account to L5 for good: a permission of its own, granted
            # per counter client at registration (``--in-person-checks``).
            raise UnauthorizedClientError("The client is not permitted to vouch for "
                                          "in-person document checks.")
    notify = ciba_ping.notification_token(client, _param(req, "client_notification_token"))
    slot = _take_hint_slot(client)
    person = _find_person(_param(req, "login_hint"))
    _count_hit(slot)
    return {"scope": client.get_allowed_scope(scope), "binding_message": binding,
            "staff": staff, "expires_in": expires_in, "acr_asked": acr_asked,
            "person": person, "in_person": in_person, "notify": notify}


def _may_check_in_person(client) -> bool:
    return client.channel == "hall" and client.meta("in_person_checks") is True


def _error(req, err: OAuth2Error):
    return _server().handle_error_response(req, err)


@bp.post("/bc-authorize")
@csrf.exempt
def bc_authorize():
    srv = _server()
    req = srv.create_oauth2_request(None)
    client = None
    try:
        client = _authenticate(req)
        p = _validate(req, client)
    except OAuth2Error as err:
        limited = isinstance(err, TooManyUnknownHintsError)
        if client is not None and (limited or err.error in ("unknown_user_id",
                                                            "access_denied")):
            # A registered hall or hotline looking up people who are not there (or not
            # usable) is worth seeing in the log: it may be probing ID numbers.
            audit.record("ciba.refused", actor=client.client_id, client_id=client.client_id,
                         details={"error": "rate_limited" if limited else err.error,
                                  "acting_party": (req.payload.data.get("acting_party")
                                                   or "")[:MAX_ACTING_PARTY]})
        return _error(req, err)
    person: Person = p["person"]
    interval = _cfg("CIBA_INTERVAL")
    act = {"sub": p["staff"], "client_id": client.client_id}
    a = approvals.create(
        "ciba", client.client_id, ttl=p["expires_in"], person_id=person.id,
        binding_message=p["binding_message"], scope=p["scope"], acr_asked=p["acr_asked"],
        extra={"act": act, "client_name": client.name, "channel": client.channel,
               "interval": interval, "in_person": p["in_person"],
               **({"ping": {"endpoint": client.meta("backchannel_client_notification_endpoint"),
                            "token_sealed": ciba_ping.seal(p["notify"])}}
                  if p["notify"] else {})})
    try:
        _admit(a)
    except TooManyPendingError as err:
        audit.record("ciba.refused", actor=client.client_id, subject=person.id,
                     client_id=client.client_id,
                     details={"error": "too_many_pending", "acting_party": p["staff"],
                              "retry_after": err.retry_after})
        return _error(req, err)
    audit.record("ciba.requested", actor=p["staff"], subject=person.id,
                 client_id=client.client_id,
                 details={"act": act, "request": a.id[:8], "scope": p["scope"],
                          "binding_message": p["binding_message"],
                          "acr_asked": p["acr_asked"], "expires_in": p["expires_in"],
                          "channel": client.channel, "in_person": p["in_person"]})
    resp = jsonify(auth_req_id=a.id, expires_in=p["expires_in"], interval=interval)
    resp.headers["Cache-Control"] = "no-store"
    return resp


# -- SMS read-back (hotline) -------------------------------------------------------


def _own_pending(client, auth_req_id: str) -> approvals.Approval:
    a = approvals.get(auth_req_id)
    if a is None or a.kind != "ciba" or a.client_id != client.client_id:
        raise InvalidGrantError("Unknown auth_req_id.")
    if a.expired:
        raise ExpiredTokenError("The request has expired.")
    if a.state != "pending":
        raise InvalidGrantError("The request has already been decided.")
    return a


@bp.post("/bc-authorize/<auth_req_id>/sms-code")
@csrf.exempt
def sms_code(auth_req_id: str):
    """Without ``code``: send a one-time code to the citizen's registered phone. With
    ``code``: the code the citizen read back to the agent; right, it approves the
    request as an SMS authentication (``amr ["sms"]``, at most ``L2``)."""
    from ..authn import sms

    srv = _server()
    req = srv.create_oauth2_request(None)
    try:
        client = _authenticate(req)
        if client.channel != "hotline":
            raise UnauthorizedClientError("SMS read-back is for hotline clients.")
        a = _own_pending(client, auth_req_id)
        if not assurance.meets(assurance.authenticator_level(["sms"]), a.acr_asked):
            raise UnmetAuthenticationRequirementsError(
                "An SMS code cannot reach the requested authentication level.")
        person = active_person(a.person_id)
        if person is None:
            raise AccessDeniedError("The person's account cannot be used.", status_code=403)
        if not person.phone:
            raise InvalidRequestError("The person has no registered phone.")
        code = _param(req, "code")
        staff = (a.extra.get("act") or {}).get("sub", client.client_id)
        if code is None:
            # Bound to this request: another agent's code for the same citizen neither
            # replaces this one nor approves this request.
            sent = sms.send_code(person.phone, "ciba", ip=request.remote_addr, bound_to=a.id)
            if not sent.ok:
                raise SmsNotSentError(sent.error, sent.retry_after)
            audit.record("ciba.sms_sent", actor=staff, subject=person.id,
                         client_id=client.client_id, details={"request": a.id[:8]})
            resp = jsonify(sent=True, phone=sent.masked_phone or mask_phone(person.phone),
                           expires_in=_cfg("SMS_CODE_TTL"))
            resp.headers["Cache-Control"] = "no-store"
            return resp
        checked = sms.verify_code(person.phone, "ciba", code, bound_to=a.id)
        if not checked.ok:
            audit.record("ciba.sms_failed", actor=staff, subject=person.id,
                         client_id=client.client_id,
                         details={"request": a.id[:8], "reason": checked.error})
            raise WrongSmsCodeError(checked.error, checked.tries_left)
        level = assurance.session_level(person.assurance_level, ["sms"])
        decided = approvals.decide(a.id, person.id, True, amr=["sms"], acr=level)
        if decided is None:
            raise InvalidGrantError("The request has already been decided.")
        _record_decision(decided, via="sms")
    except OAuth2Error as err:
        return _error(req, err)
    resp = jsonify(approved=True, acr=level)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _record_decision(a: approvals.Approval, *, via: str) -> None:
    """``ciba.decided`` once per request: where the decision is made here (SMS), or
    where it is first seen (the person's app decides through ``approvals.decide``)."""
    if not store().add(f"ciba_decided_logged:{a.id}", 1,
                       max(1.0, a.expires - time.time()) + 60):
        return
    act = a.extra.get("act") or {}
    audit.record("ciba.decided", actor=a.person_id or "system", subject=a.person_id,
                 client_id=a.client_id,
                 details={"request": a.id[:8], "state": a.state, "amr": a.amr, "acr": a.acr,
                          "act": act, "via": via})


# -- the token grant ---------------------------------------------------------------


class CibaGrant(PolicyTokenResponse, BaseGrant, TokenEndpointMixin):
    """``grant_type=urn:openid:params:grant-type:ciba`` (CIBA §10.1, poll mode)."""

    GRANT_TYPE = CIBA
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not policy.may_use_grant(client, CIBA):
            raise UnauthorizedClientError(f"The client is not authorized to use "
                                          f"'grant_type={CIBA}'.")
        self.request.client = client
        aid = self.request.payload.data.get("auth_req_id")
        if not aid:
            raise InvalidRequestError("The 'auth_req_id' parameter is required.")
        a = approvals.get(aid)
        if a is None or a.kind != "ciba" or a.client_id != client.get_client_id():
            raise InvalidGrantError("Unknown auth_req_id.")
        if a.expired:
            raise ExpiredTokenError("The request has expired; start a new one.")
        if a.state == "denied":
            _record_decision(a, via="app")
            raise AccessDeniedError("The person denied the request.")
        if a.state == "pending":
            interval = int(a.extra.get("interval") or _cfg("CIBA_INTERVAL"))
            # One poll per interval; a second one within it is told to slow down.
            if not store().add(f"ciba_poll:{aid}", 1, interval):
                raise SlowDownError("Polling too fast; add 5 seconds to the interval.")
            raise AuthorizationPendingError("The person has not yet approved the request.")
        _record_decision(a, via="app")
        # Checked before the request is used up: an approval too weak for what was asked
        # stays refused on every poll rather than turning into "already used".
        user = self._subject(a)
        taken = approvals.consume(aid)
        if taken is None:
            raise InvalidGrantError("The auth_req_id has already been used.")
        self.approval = taken
        self.request.user = user
        if "counter" in user.amr:
            raise_level(user.person, "L5", "counter", client_id=client.get_client_id(),
                        actor=(taken.extra.get("act") or {}).get("sub", client.get_client_id()))

    def _subject(self, a: approvals.Approval) -> Subject:
        person = active_person(a.person_id)
        if person is None:
            raise InvalidGrantError("The person's account cannot be used.")
        client = self.request.client
        if a.extra.get("in_person") and _may_check_in_person(client) and a.amr:
            # The clerk checked the document face to face and the holder of the account
            # approved on its app: in person at a counter (L5), whatever the app's own
            # session level (raise_level records it on the account once tokens go out).
            amr = [*a.amr, "counter"]
            acr = assurance.session_level("L5", amr)
        else:
            # What the approving session proved, and never more than the account and
            # those authenticators allow (an app that reports L4 after a password gets L2).
            amr = list(a.amr)
            reached = assurance.session_level(person.assurance_level, amr)
            acr = assurance.lower(a.acr, reached) if a.acr else reached
        if not assurance.meets(acr, a.acr_asked):
            raise AccessDeniedError("The approval did not reach the requested authentication "
                                    "level.")
        return new_subject(client, person, auth_time=int(a.decided_at or time.time()),
                           acr=acr, amr=amr, channel=client.channel,
                           act=dict(a.extra.get("act") or {}) or None)

    def token_scope(self) -> str:
        return self.approval.scope


def register(app, server) -> None:
    server.register_grant(CibaGrant, [OpenIDToken()])
    app.register_blueprint(bp)
    base = app.config["ISSUER"]
    metadata.publish(
        app,
        backchannel_authentication_endpoint=base + "/bc-authorize",
        backchannel_token_delivery_modes_supported=["poll", "ping"],
        backchannel_user_code_parameter_supported=False,
        grant_types_supported=[CIBA],
    )
