"""Passkeys (WebAuthn): binding, signing in and stepping up, mostly the ways they fail.

The authenticator is a small software one written here (a P-256 key, attestation
"none", authenticator data and signatures built by hand), so each test can bend one
thing a real authenticator would not: the challenge, the origin, the counter, whose
key it is.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from urllib.parse import urlsplit

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import KeySet
from webauthn.helpers import bytes_to_base64url

from idp import audit
from idp.audit import AuditEvent
from idp.authn import webauthn_views
from idp.extensions import db
from idp.models import Person, WebAuthnCredential
from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PASSWORD,
    CITIZEN_PHONE,
    authorize_url,
    follow_login,
    form_fields,
    last_sms_code,
    make_person,
    query,
)

ORIGIN = "http://localhost"  # the test app's issuer
RP_ID = "localhost"
AAGUID = bytes(range(16))
OTHER_ID = "110101199003074477"

UP, UV, AT = 0x01, 0x04, 0x40


class SoftAuthenticator:
    """Just enough of a CTAP2 platform authenticator, with every field overridable."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cred_id = secrets.token_bytes(32)
        self.counter = 0
        self.user_handle: str | None = None

    @property
    def id(self) -> str:
        return bytes_to_base64url(self.cred_id)

    def cose_key(self) -> bytes:
        nums = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: nums.x.to_bytes(32, "big"),
                            -3: nums.y.to_bytes(32, "big")})

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict, *, origin=ORIGIN, uv=True) -> dict:
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        flags = UP | AT | (UV if uv else 0)
        auth = (hashlib.sha256(options["rp"]["id"].encode()).digest() + bytes([flags])
                + self.counter.to_bytes(4, "big") + AAGUID
                + len(self.cred_id).to_bytes(2, "big") + self.cred_id + self.cose_key())
        att = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth})
        self.user_handle = options["user"]["id"]
        return {"id": self.id, "rawId": self.id, "type": "public-key",
                "response": {"clientDataJSON": bytes_to_base64url(client_data),
                             "attestationObject": bytes_to_base64url(att),
                             "transports": ["internal"]},
                "clientExtensionResults": {}}

    def get(self, options: dict, *, origin=ORIGIN, challenge=None, counter=None,
            rp_id=RP_ID, uv=True) -> dict:
        if counter is None:
            self.counter += 1
            counter = self.counter
        client_data = self._client_data("webauthn.get", challenge or options["challenge"],
                                        origin)
        auth = (hashlib.sha256(rp_id.encode()).digest() + bytes([UP | (UV if uv else 0)])
                + counter.to_bytes(4, "big"))
        sig = self.key.sign(auth + hashlib.sha256(client_data).digest(),
                            ec.ECDSA(hashes.SHA256()))
        response = {"clientDataJSON": bytes_to_base64url(client_data),
                    "authenticatorData": bytes_to_base64url(auth),
                    "signature": bytes_to_base64url(sig)}
        if self.user_handle:
            response["userHandle"] = self.user_handle
        return {"id": self.id, "rawId": self.id, "type": "public-key", "response": response,
                "clientExtensionResults": {}}

    def store_for(self, person: Person, level="L3", sign_count=0) -> WebAuthnCredential:
        """Put this authenticator's credential on ``person`` directly (as if registered)."""
        self.user_handle = bytes_to_base64url(person.id.encode())
        cred = WebAuthnCredential(person_id=person.id, credential_id=self.id,
                                  public_key=bytes_to_base64url(self.cose_key()),
                                  sign_count=sign_count, transports=["internal"], level=level)
        db.session.add(cred)
        db.session.commit()
        return cred


# -- helpers ----------------------------------------------------------------------------


def _csrf(client) -> str:
    return form_fields(client.get("/login").get_data(as_text=True))["csrf_token"]


def _post(client, url, body, csrf):
    return client.post(url, json=body, headers={"X-CSRFToken": csrf})


def _sign_in(client, username=CITIZEN_ID, password=CITIZEN_PASSWORD) -> str:
    csrf = _csrf(client)
    resp = client.post("/login", data={"csrf_token": csrf, "username": username,
                                       "password": password})
    assert resp.status_code == 302
    return csrf


def _start_step_up(client, back="/account/passkeys") -> str:
    """The page's "先验证身份" button: the step-up page's URL it leads to."""
    csrf = form_fields(client.get(back).get_data(as_text=True))["csrf_token"]
    resp = client.post("/account/security/step-up", data={"csrf_token": csrf, "next": back})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    assert urlsplit(resp.headers["Location"]).path == "/login/step-up"
    return resp.headers["Location"]


def _step_up_by_sms(client, url: str, back="/account/passkeys") -> None:
    """On the step-up page at ``url``: an SMS code to the registered phone, and back."""
    page = client.get(url)
    assert page.status_code == 200 and 'id="stepup-sms"' in page.get_data(as_text=True)
    fields = {"csrf_token": form_fields(page.get_data(as_text=True))["csrf_token"],
              "rid": query(url)["rid"]}
    assert client.post("/login/step-up", data={**fields, "action": "sms_send"}).status_code == 200
    code = last_sms_code(client.application, CITIZEN_PHONE, "stepup")
    resp = client.post("/login/step-up", data={**fields, "action": "sms_verify", "code": code})
    assert resp.status_code == 302 and resp.headers["Location"] == back


def _sign_in_at_l3(client) -> str:
    """A password sign-in (L2) raised to L3 with an SMS code, as the page offers it."""
    csrf = _sign_in(client)
    _step_up_by_sms(client, _start_step_up(client))
    return csrf


def _real_name(person, level="L3"):
    person.assurance_level = level
    db.session.commit()


def _second_factor(client) -> None:
    """What an SMS step-up does to the session (tested through the pages above), for
    tests about the ceremony itself rather than about getting there."""
    from idp.authn import session as sso

    cookie = f"idp_sso={_session_cookie(client).value}"
    with client.application.test_request_context("/", headers={"Cookie": cookie}):
        sso.elevate(sso.current(), ["sms"])


def _sign_in_two_factors(client, person) -> str:
    _real_name(person)
    csrf = _sign_in(client)
    _second_factor(client)
    return csrf


def _register(client, csrf, auth: SoftAuthenticator, **kw):
    options = _post(client, "/passkey/register/options", {}, csrf)
    assert options.status_code == 200, options.get_json()
    return _post(client, "/passkey/register/verify",
                 {"credential": auth.create(options.get_json(), **kw), "name": "我的手机"}, csrf)


def _login(client, csrf, auth: SoftAuthenticator, body=None, **kw):
    options = _post(client, "/passkey/login/options", body or {}, csrf)
    assert options.status_code == 200
    return _post(client, "/passkey/login/verify",
                 {**(body or {}), "credential": auth.get(options.get_json(), **kw)}, csrf)


def _events(name: str) -> list[AuditEvent]:
    audit.flush()
    db.session.expire_all()
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)))


def _claims(client, token):
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    return jwt.decode(token, jwks, algorithms=["ES256"]).claims


def _session_cookie(client):
    return client.get_cookie("idp_sso")


@pytest.fixture
def auth():
    return SoftAuthenticator()


# -- registration -----------------------------------------------------------------------


def test_register_then_sign_in_with_passkey_only(client, person, auth):
    _real_name(person)
    csrf = _sign_in_at_l3(client)
    resp = _register(client, csrf, auth)
    assert resp.status_code == 200, resp.get_json()
    cred = db.session.scalar(db.select(WebAuthnCredential))
    assert cred.person_id == person.id and cred.credential_id == auth.id
    assert cred.level == "L3"  # the session's level at binding time (password + SMS)
    assert cred.transports == ["internal"] and cred.aaguid == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert [e.subject for e in _events("webauthn.registered")] == [person.id]

    client.delete_cookie("idp_sso")
    resp = _login(client, csrf, auth)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["redirect"] == "/"
    assert _session_cookie(client) is not None
    db.session.refresh(cred)
    assert cred.sign_count == 1 and cred.last_used_at
    # The page lists it, and the registration options now exclude it.
    assert "我的手机" in client.get("/account/passkeys").get_data(as_text=True)
    options = _post(client, "/passkey/register/options", {}, csrf).get_json()
    assert [c["id"] for c in options["excludeCredentials"]] == [auth.id]
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert CITIZEN_ID not in json.dumps(options)  # names shown by authenticators are masked


def test_l2_account_needs_real_name_and_two_factors_to_bind(client, person, auth):
    """A self-declared account too: a factor bound with a stolen password (or with two
    factors but no real-name check) would prove L3 once the account is verified."""
    assert person.assurance_level == "L2"
    csrf = _sign_in(client)
    page = client.get("/account/passkeys").get_data(as_text=True)
    assert 'id="passkey-step-up"' in page and 'id="passkey-register"' not in page
    resp = _post(client, "/passkey/register/options", {}, csrf)
    assert resp.status_code == 403 and resp.get_json()["error"] == "step_up_required"
    # The step-up asks L3: the real-name check on the way, then a second factor.
    step_up = client.get(resp.get_json()["step_up_url"]).get_data(as_text=True)
    assert 'name="id_number"' in step_up
    _second_factor(client)  # password + SMS, but the account is still L2: not enough
    assert _post(client, "/passkey/register/options", {}, csrf).status_code == 403
    _real_name(person)
    _second_factor(client)  # the session level is recomputed with the verified account
    resp = _register(client, csrf, auth)
    assert resp.status_code == 200, resp.get_json()
    assert db.session.scalar(db.select(WebAuthnCredential)).level == "L3"


def test_password_session_on_a_real_name_account_cannot_bind(client, person, auth):
    """A stolen password alone must not add the passkey that would then prove L3."""
    _real_name(person)
    csrf = _sign_in(client)
    page = client.get("/account/passkeys").get_data(as_text=True)
    assert 'id="passkey-step-up"' in page and "先验证身份" in page
    assert 'id="passkey-register"' not in page
    resp = _post(client, "/passkey/register/options", {}, csrf)
    body = resp.get_json()
    assert resp.status_code == 403 and body["error"] == "step_up_required"
    assert "L3" in body["message"] and "challenge" not in body
    assert urlsplit(body["step_up_url"]).path == "/login/step-up"
    # Nor by going straight to the end of the ceremony.
    fake = SoftAuthenticator().create({"challenge": bytes_to_base64url(b"x" * 32),
                                       "rp": {"id": RP_ID}, "user": {"id": "eA"}})
    resp = _post(client, "/passkey/register/verify", {"credential": fake}, csrf)
    assert resp.status_code == 403 and resp.get_json()["error"] == "step_up_required"
    assert db.session.scalar(db.select(WebAuthnCredential)) is None
    refused = _events("webauthn.step_up_required")
    assert len(refused) == 2 and refused[0].subject == person.id

    # The step-up the answer points at comes back here at L3, and binding works.
    _step_up_by_sms(client, body["step_up_url"])
    page = client.get("/account/passkeys").get_data(as_text=True)
    assert 'id="passkey-register"' in page and "passkey-step-up" not in page
    resp = _register(client, csrf, auth)
    assert resp.status_code == 200 and resp.get_json()["level"] == "L3"


def test_step_up_round_trip_returns_to_the_account_page(client, person):
    _real_name(person)
    _sign_in(client)
    cookie = _session_cookie(client).value
    url = _start_step_up(client)
    page = client.get(url).get_data(as_text=True)
    assert "您正在登录" not in page  # no client behind this request
    assert "L3" in page and CITIZEN_PHONE not in page and "139****5678" in page
    # Giving up comes back too, still at L2.
    fields = {"csrf_token": form_fields(page)["csrf_token"], "rid": query(url)["rid"]}
    resp = client.post("/login/step-up", data={**fields, "action": "give_up"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/passkeys"
    assert 'id="passkey-step-up"' in client.get("/account/passkeys").get_data(as_text=True)

    _step_up_by_sms(client, _start_step_up(client))
    assert _session_cookie(client).value == cookie  # raised in place, same session
    assert "passkey-step-up" not in client.get("/account/passkeys").get_data(as_text=True)
    assert [json.loads(e.details)["to"] if isinstance(e.details, str) else e.details["to"]
            for e in _events("stepup.success")] == ["L3"]
    # At L3 already, the button goes straight back.
    csrf = _csrf(client)
    resp = client.post("/account/security/step-up",
                       data={"csrf_token": csrf, "next": "/account/passkeys"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/passkeys"


def test_step_up_returns_only_to_the_account_pages(client, person, monkeypatch):
    _real_name(person)
    csrf = _sign_in(client)
    for evil in ("https://evil.example/", "//evil.example", "/\\evil.example", "/logout"):
        resp = client.post("/account/security/step-up", data={"csrf_token": csrf, "next": evil})
        rid = query(resp.headers["Location"])["rid"]
        back = client.post("/login/step-up", data={"csrf_token": csrf, "rid": rid,
                                                   "action": "give_up"})
        assert back.headers["Location"] == "/account/security", evil
    assert client.post("/account/security/step-up", data={"next": "/account/passkeys"}
                       ).status_code == 400  # no CSRF token
    # A sign-in too old for changing authenticators is renewed first, not stepped up.
    monkeypatch.setitem(client.application.config, "SECURITY_REAUTH_SECONDS", -1)
    resp = client.post("/account/security/step-up",
                       data={"csrf_token": csrf, "next": "/account/passkeys"})
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"


def test_registration_needs_a_session(client, person, auth):
    csrf = _csrf(client)
    resp = _post(client, "/passkey/register/options", {}, csrf)
    assert resp.status_code == 401 and resp.get_json()["error"] == "login_required"
    resp = _post(client, "/passkey/register/verify", {"credential": {}}, csrf)
    assert resp.status_code == 401
    page = client.get("/account/passkeys")
    assert page.status_code == 302 and urlsplit(page.headers["Location"]).path == "/login"


def test_registration_challenge_is_bound_to_the_session(ctx, person, auth):
    """A challenge issued to one session cannot finish a registration in another, and
    is gone once used."""
    one, two = ctx.test_client(), ctx.test_client()
    csrf_one, csrf_two = _sign_in_two_factors(one, person), _sign_in_two_factors(two, person)
    options = _post(one, "/passkey/register/options", {}, csrf_one).get_json()
    credential = auth.create(options)
    resp = _post(two, "/passkey/register/verify", {"credential": credential}, csrf_two)
    assert resp.status_code == 400 and resp.get_json()["error"] == "challenge_expired"
    # Taken by that attempt: single use, even for the rightful session.
    resp = _post(one, "/passkey/register/verify", {"credential": credential}, csrf_one)
    assert resp.get_json()["error"] == "challenge_expired"
    assert db.session.scalar(db.select(WebAuthnCredential)) is None


def test_registration_requires_user_verification_and_right_origin(client, person, auth):
    csrf = _sign_in_two_factors(client, person)
    resp = _register(client, csrf, auth, uv=False)
    assert resp.status_code == 400 and resp.get_json()["error"] == "verification_failed"
    resp = _register(client, csrf, auth, origin="https://evil.example")
    assert resp.status_code == 400 and resp.get_json()["error"] == "verification_failed"
    assert db.session.scalar(db.select(WebAuthnCredential)) is None
    assert len(_events("webauthn.register_failed")) == 2


def test_json_endpoints_are_csrf_protected(client, person, auth):
    _sign_in(client)
    assert client.post("/passkey/register/options", json={}).status_code == 400
    assert client.post("/passkey/login/options", json={}).status_code == 400
    resp = _post(client, "/passkey/login/options", {}, "forged")
    assert resp.status_code == 400 and b"challenge" not in resp.data


# -- signing in -------------------------------------------------------------------------


def test_wrong_and_replayed_challenge_are_refused(client, person, auth):
    auth.store_for(person)
    csrf = _csrf(client)
    options = _post(client, "/passkey/login/options", {}, csrf).get_json()
    forged = auth.get(options, challenge=bytes_to_base64url(secrets.token_bytes(32)))
    resp = _post(client, "/passkey/login/verify", {"credential": forged}, csrf)
    assert resp.status_code == 400 and resp.get_json()["error"] == "challenge_expired"
    assert resp.get_json()["message"]  # readable

    good = auth.get(options)
    assert _post(client, "/passkey/login/verify", {"credential": good}, csrf).status_code == 200
    client.delete_cookie("idp_sso")
    replay = _post(client, "/passkey/login/verify", {"credential": good}, csrf)
    assert replay.status_code == 400 and replay.get_json()["error"] == "challenge_expired"
    assert _session_cookie(client) is None
    reasons = [json.loads(e.details)["reason"] if isinstance(e.details, str)
               else e.details["reason"] for e in _events("login.failure")]
    assert reasons.count("unknown, used or expired challenge") == 2


def test_challenge_from_another_browser_is_refused(ctx, person, auth):
    auth.store_for(person)
    mine, theirs = ctx.test_client(), ctx.test_client()
    csrf_mine, csrf_theirs = _csrf(mine), _csrf(theirs)
    options = _post(theirs, "/passkey/login/options", {}, csrf_theirs).get_json()
    resp = _post(mine, "/passkey/login/verify", {"credential": auth.get(options)}, csrf_mine)
    assert resp.get_json()["error"] == "challenge_expired"


def test_wrong_origin_and_rp_id_are_refused(client, person, auth):
    auth.store_for(person)
    csrf = _csrf(client)
    resp = _login(client, csrf, auth, origin="http://localhost.evil.example")
    assert resp.status_code == 401 and resp.get_json()["error"] == "verification_failed"
    resp = _login(client, csrf, auth, rp_id="evil.example")
    assert resp.status_code == 401 and resp.get_json()["error"] == "verification_failed"
    resp = _login(client, csrf, auth, uv=False)
    assert resp.status_code == 401 and resp.get_json()["error"] == "verification_failed"
    assert _session_cookie(client) is None


def test_bad_signature_is_refused(client, person, auth):
    auth.store_for(person)
    impostor = SoftAuthenticator()
    impostor.cred_id, impostor.user_handle = auth.cred_id, auth.user_handle
    resp = _login(client, _csrf(client), impostor)
    assert resp.status_code == 401 and resp.get_json()["error"] == "verification_failed"


def test_sign_count_regression_is_refused_as_possible_clone(client, person, auth):
    cred = auth.store_for(person, sign_count=7)
    csrf = _csrf(client)
    resp = _login(client, csrf, auth, counter=7)  # not above the stored count
    assert resp.status_code == 401 and resp.get_json()["error"] == "possible_clone"
    resp = _login(client, csrf, auth, counter=3)
    assert resp.get_json()["error"] == "possible_clone"
    assert _session_cookie(client) is None
    db.session.refresh(cred)
    assert cred.sign_count == 7
    clones = _events("webauthn.clone_suspected")
    assert len(clones) == 2 and clones[0].subject == person.id
    assert _login(client, csrf, auth, counter=8).status_code == 200


def test_sign_count_race_is_refused_as_possible_clone(client, person, auth, monkeypatch):
    """A cloned authenticator and the real one present the same count at once: another
    worker accepts one just after this one read the stored count. The conditional
    update, not the earlier comparison, has to refuse the second."""
    cred = auth.store_for(person, sign_count=4)
    auth.counter = 4  # in step with the stored count: its next assertion is honest
    real_verify = webauthn_views.verify_authentication_response

    def verified_while_the_clone_wins(**kw):
        result = real_verify(**kw)
        with db.engine.begin() as other_worker:  # its own connection, committed now
            other_worker.execute(db.update(WebAuthnCredential).where(
                WebAuthnCredential.id == cred.id).values(sign_count=result.new_sign_count))
        return result

    monkeypatch.setattr(webauthn_views, "verify_authentication_response",
                        verified_while_the_clone_wins)
    csrf = _csrf(client)
    resp = _login(client, csrf, auth)  # presents 5, over the 4 this request read
    assert resp.status_code == 401 and resp.get_json()["error"] == "possible_clone"
    assert _session_cookie(client) is None
    clones = _events("webauthn.clone_suspected")
    assert len(clones) == 1 and clones[0].subject == person.id
    details = clones[0].details if isinstance(clones[0].details, dict) else json.loads(
        clones[0].details)
    assert details["presented_count"] == 5 and details["stored_count"] == 5
    db.session.expire_all()
    assert db.session.get(WebAuthnCredential, cred.id).sign_count == 5
    # Without a competitor the next, higher count goes through.
    monkeypatch.setattr(webauthn_views, "verify_authentication_response", real_verify)
    assert _login(client, csrf, auth).status_code == 200
    db.session.expire_all()
    assert db.session.get(WebAuthnCredential, cred.id).sign_count == 6


def test_counters_that_stay_zero_are_accepted(client, person, auth):
    """Authenticators without a counter (many synced passkeys) always report 0."""
    auth.store_for(person, sign_count=0)
    csrf = _csrf(client)
    assert _login(client, csrf, auth, counter=0).status_code == 200
    client.delete_cookie("idp_sso")
    assert _login(client, csrf, auth, counter=0).status_code == 200


def test_unknown_credential_is_refused_and_audited(client, person, auth):
    csrf = _csrf(client)
    resp = _login(client, csrf, auth)
    assert resp.status_code == 401 and resp.get_json()["error"] == "unknown_credential"
    assert "登记" in resp.get_json()["message"]
    failures = _events("login.failure")
    assert len(failures) == 1 and failures[0].actor == "anonymous"


def test_username_hint_restricts_to_that_persons_credentials(client, person, auth):
    mine = auth.store_for(person)
    other = make_person(OTHER_ID, name="王五", phone="13700000000")
    theirs = SoftAuthenticator()
    theirs.store_for(other)
    csrf = _csrf(client)
    options = _post(client, "/passkey/login/options", {"username": CITIZEN_ID}, csrf).get_json()
    assert [c["id"] for c in options["allowCredentials"]] == [mine.credential_id]
    resp = _post(client, "/passkey/login/verify", {"credential": theirs.get(options)}, csrf)
    assert resp.status_code == 403 and resp.get_json()["error"] == "wrong_person"

    # A name of nobody, or of somebody without passkeys, looks like a name with one: the
    # answer must not tell who has an account (or a passkey) here.
    def allowed(name):
        return _post(client, "/passkey/login/options", {"username": name},
                     csrf).get_json()["allowCredentials"]

    real = allowed(CITIZEN_ID)
    make_person("110105198001010016", name="赵六", phone="13500000000")  # no passkey
    for name in ("110105198001010016", "110101199001010015", "13800009999",
                 "11010519800101001X"):  # the last one's check character is wrong
        decoy = allowed(name)
        assert len(decoy) == len(real) and decoy[0].keys() == real[0].keys()
        assert decoy[0]["transports"] == real[0]["transports"]
        assert len(decoy[0]["id"]) == len(real[0]["id"]) and decoy[0]["id"] != real[0]["id"]
        assert allowed(name) == decoy  # the same each time, as a real list would be
    assert allowed("110105198001010016") != allowed("110101199001010015")


def test_locked_account_cannot_sign_in_with_passkey(client, person, auth):
    auth.store_for(person)
    person.status = "locked"
    db.session.commit()
    resp = _login(client, _csrf(client), auth)
    assert resp.status_code == 403 and resp.get_json()["error"] == "account_unavailable"


def _authorize_to_login(client, rp, **params) -> str:
    resp = client.get(authorize_url(rp, **params))
    assert urlsplit(resp.headers["Location"]).path == "/login"
    return query(resp.headers["Location"])["rid"]


def _finish(client, redirect: str, rp) -> dict:
    resp = follow_login(client, client.get(redirect))
    code = query(resp.headers["Location"])["code"]
    tok = client.post("/token", headers=rp.basic, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri})
    assert tok.status_code == 200, tok.get_json()
    return _claims(client, tok.get_json()["id_token"])


def test_passkey_sign_in_resumes_authorization_with_hwk(client, person, rp, auth):
    person.assurance_level = "L3"
    db.session.commit()
    auth.store_for(person, level="L2")
    rid = _authorize_to_login(client, rp)
    resp = _login(client, _csrf(client), auth, body={"rid": rid})
    assert resp.status_code == 200
    claims = _finish(client, resp.get_json()["redirect"], rp)
    assert claims["amr"] == ["hwk"] and claims["acr"] == "L3" and claims["sub"] == person.id


def test_credential_bound_at_l4_proves_l4(client, person, rp, auth):
    person.assurance_level = "L4"
    db.session.commit()
    auth.store_for(person, level="L4")
    rid = _authorize_to_login(client, rp, acr_values="L4")
    resp = _login(client, _csrf(client), auth, body={"rid": rid})
    claims = _finish(client, resp.get_json()["redirect"], rp)
    assert claims["acr"] == "L4" and claims["amr"] == ["hwk"]  # L4key stays internal


def test_expired_authorization_request_is_refused(client, person, auth):
    auth.store_for(person)
    resp = _login(client, _csrf(client), auth, body={"rid": "no-such-request"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "request_expired"


# -- step-up ----------------------------------------------------------------------------


def _step_up_rid(client, rp) -> str:
    """Password session (L2) on an L3 account, then a request asking for L3."""
    _sign_in(client)
    resp = client.get(authorize_url(rp, acr_values="L3"))
    assert urlsplit(resp.headers["Location"]).path == "/login/step-up"
    return query(resp.headers["Location"])["rid"]


def test_step_up_with_own_passkey_raises_the_session(client, person, rp, auth):
    person.assurance_level = "L3"
    db.session.commit()
    auth.store_for(person, level="L2")
    rid = _step_up_rid(client, rp)
    page = client.get(f"/login/step-up?rid={rid}").get_data(as_text=True)
    assert 'id="passkey-stepup"' in page and f'data-rid="{rid}"' in page
    csrf = form_fields(page)["csrf_token"]
    cookie = _session_cookie(client).value
    options = _post(client, "/login/step-up/passkey/options", {"rid": rid}, csrf).get_json()
    assert [c["id"] for c in options["allowCredentials"]] == [auth.id]
    resp = _post(client, "/login/step-up/passkey/verify",
                 {"rid": rid, "credential": auth.get(options)}, csrf)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["acr"] == "L3"
    assert _session_cookie(client).value == cookie  # same session, same sid
    claims = _finish(client, resp.get_json()["redirect"], rp)
    assert claims["acr"] == "L3" and claims["amr"] == ["pwd", "hwk"]


def test_step_up_with_another_persons_credential_is_refused(client, person, rp, auth):
    person.assurance_level = "L3"
    db.session.commit()
    auth.store_for(person)
    other = make_person(OTHER_ID, name="王五", phone="13700000000")
    theirs = SoftAuthenticator()
    theirs.store_for(other)
    rid = _step_up_rid(client, rp)
    csrf = _csrf(client)
    options = _post(client, "/login/step-up/passkey/options", {"rid": rid}, csrf).get_json()
    resp = _post(client, "/login/step-up/passkey/verify",
                 {"rid": rid, "credential": theirs.get(options)}, csrf)
    assert resp.status_code == 403 and resp.get_json()["error"] == "wrong_person"
    # Still L2: authorize sends the browser back to the step-up page.
    again = client.get(authorize_url(rp, acr_values="L3"))
    assert urlsplit(again.headers["Location"]).path == "/login/step-up"
    failure = _events("login.failure")[-1]
    assert failure.subject == person.id


def test_login_challenge_cannot_be_used_for_step_up(client, person, rp, auth):
    person.assurance_level = "L3"
    db.session.commit()
    auth.store_for(person)
    rid = _step_up_rid(client, rp)
    csrf = _csrf(client)
    options = _post(client, "/passkey/login/options", {}, csrf).get_json()
    resp = _post(client, "/login/step-up/passkey/verify",
                 {"rid": rid, "credential": auth.get(options)}, csrf)
    assert resp.get_json()["error"] == "challenge_expired"


def test_step_up_without_credentials_or_session(client, person, rp):
    rid = _step_up_rid(client, rp)
    csrf = _csrf(client)
    resp = _post(client, "/login/step-up/passkey/options", {"rid": rid}, csrf)
    assert resp.status_code == 400 and resp.get_json()["error"] == "no_credential"
    client.delete_cookie("idp_sso")
    resp = _post(client, "/login/step-up/passkey/options", {"rid": rid}, csrf)
    assert resp.get_json()["error"] == "request_expired"


# -- managing ---------------------------------------------------------------------------


def test_remove_own_credential_only(client, person, auth):
    mine = auth.store_for(person)
    other = make_person(OTHER_ID, name="王五", phone="13700000000")
    theirs = SoftAuthenticator().store_for(other)
    mine_id, theirs_id = mine.id, theirs.id
    csrf = _sign_in_two_factors(client, person)
    resp = client.post(f"/account/passkeys/{theirs_id}/remove", data={"csrf_token": csrf})
    assert resp.status_code == 404
    assert client.post(f"/account/passkeys/{mine_id}/remove").status_code == 400  # no CSRF
    resp = client.post(f"/account/passkeys/{mine_id}/remove", data={"csrf_token": csrf})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(WebAuthnCredential, mine_id) is None
    assert db.session.get(WebAuthnCredential, theirs_id) is not None
    assert [e.subject for e in _events("webauthn.removed")] == [person.id]
    # Removed means unusable.
    client.delete_cookie("idp_sso")
    assert _login(client, csrf, auth).get_json()["error"] == "unknown_credential"


def test_removing_needs_the_binding_level(client, person, auth):
    _real_name(person)
    cred_id = auth.store_for(person).id
    csrf = _sign_in(client)
    resp = client.post(f"/account/passkeys/{cred_id}/remove", data={"csrf_token": csrf})
    assert resp.status_code == 403 and 'id="passkey-step-up"' in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(WebAuthnCredential, cred_id) is not None
    assert _events("webauthn.removed") == []
    _step_up_by_sms(client, _start_step_up(client))
    resp = client.post(f"/account/passkeys/{cred_id}/remove", data={"csrf_token": csrf})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(WebAuthnCredential, cred_id) is None


# -- the edges ------------------------------------------------------------------------


def test_binding_needs_a_recent_sign_in(client, person, monkeypatch):
    """A stolen session cookie alone must not become a lasting credential."""
    csrf = _sign_in(client)
    monkeypatch.setitem(client.application.config, "WEBAUTHN_REGISTER_MAX_AGE", -1)
    resp = _post(client, "/passkey/register/options", {}, csrf)
    assert resp.status_code == 401 and resp.get_json()["error"] == "login_required"


def test_removing_needs_a_recent_sign_in(client, person, auth, monkeypatch):
    cred_id = auth.store_for(person).id
    csrf = _sign_in(client)
    monkeypatch.setitem(client.application.config, "WEBAUTHN_REGISTER_MAX_AGE", -1)
    resp = client.post(f"/account/passkeys/{cred_id}/remove", data={"csrf_token": csrf})
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    db.session.expire_all()
    assert db.session.get(WebAuthnCredential, cred_id) is not None
    assert _events("webauthn.removed") == []


def test_expired_challenge_is_refused(client, person, auth, monkeypatch):
    auth.store_for(person)
    monkeypatch.setitem(client.application.config, "WEBAUTHN_CHALLENGE_TTL", 1)
    csrf = _csrf(client)
    options = _post(client, "/passkey/login/options", {}, csrf).get_json()
    assert options["timeout"] == 1000
    time.sleep(1.3)
    resp = _post(client, "/passkey/login/verify", {"credential": auth.get(options)}, csrf)
    assert resp.status_code == 400 and resp.get_json()["error"] == "challenge_expired"


@pytest.mark.parametrize("credential", [
    None, "text", [], {"id": 5}, {"response": []}, {"response": {"clientDataJSON": "!!"}},
    {"response": {"clientDataJSON": bytes_to_base64url(b'{"type": "webauthn.get"}')}},
], ids=["null", "string", "list", "no-response", "bad-response", "bad-b64", "no-challenge"])
def test_malformed_responses_get_a_json_error(client, person, credential):
    csrf = _sign_in_two_factors(client, person)
    for url in ("/passkey/register/verify", "/passkey/login/verify"):
        resp = _post(client, url, {"credential": credential}, csrf)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request", url


def test_step_up_button_shown_only_when_a_passkey_reaches_the_level(client, person, rp, auth):
    from flask import render_template

    person.assurance_level = "L3"
    db.session.commit()
    rid = _step_up_rid(client, rp)
    cookie = f"idp_sso={_session_cookie(client).value}"

    def rendered(asked):
        with client.application.test_request_context("/login/step-up",
                                                     headers={"Cookie": cookie}):
            return render_template("step_up_passkey.html", rid=rid, asked=asked, client=None)

    assert "passkey-stepup" not in rendered("L3")  # no credential yet
    auth.store_for(person, level="L2")
    assert 'id="passkey-stepup"' in rendered("L3") and f'data-rid="{rid}"' in rendered("L3")
    assert "passkey-stepup" not in rendered("L4")  # a key bound at L2 proves L3 only
