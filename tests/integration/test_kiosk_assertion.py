"""Trusted kiosks (RFC 7523 §2.1): an ID-card chip read with a face match, signed by the
kiosk, exchanged for L4 tokens; and the demo kiosk screen."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from idp import audit
from idp.audit import AuditEvent
from idp.clients import DEVICE_CODE, JWT_BEARER, forget_client, register_client
from idp.extensions import db
from idp.models import Client, Person
from tests.helpers import CITIZEN_ID, CITIZEN_PASSWORD, form_fields

UNKNOWN_ID = "110105199003071239"  # valid check digit; nobody registered with it here


def new_key(kid):
    return ECKey.generate_key("P-256", private=True,
                              parameters={"kid": kid, "alg": "ES256", "use": "sig"})


def kiosk(client_id="kiosk-1", *, channel="kiosk", key=None):
    key = key or new_key(client_id + "-key")
    register_client(client_id=client_id, name=f"自助终端 {client_id}", secret=None,
                    auth_method="private_key_jwt", redirect_uris=[], grant_types=[JWT_BEARER],
                    post_logout_redirect_uris=[], backchannel_logout_uri=None, first_party=True,
                    sensitive_scopes=[], channel=channel,
                    jwks={"keys": [key.as_dict(private=False)]}, id_token_alg=None)
    return key


def assertion(key, iss="kiosk-1", sub=CITIZEN_ID, **changes):
    now = int(time.time())
    claims = {"iss": iss, "sub": sub, "aud": "http://localhost/token", "iat": now,
              "exp": now + 120, "jti": secrets.token_urlsafe(16),
              "check": {"chip": True, "face_match": True, "score": 0.93}}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def exchange(client, token, scope="openid profile"):
    return client.post("/token", data={"grant_type": JWT_BEARER, "assertion": token,
                                       "scope": scope})


def claims_of(client, token):
    keys = KeySet.import_key_set(client.get("/jwks").get_json())
    return jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims


def refused(resp, error="invalid_grant"):
    body = resp.get_json()
    assert resp.status_code in (400, 401), body
    assert body["error"] == error, body
    assert CITIZEN_ID not in json.dumps(body) and UNKNOWN_ID not in json.dumps(body)
    return body["error_description"]


def _events(name):
    audit.flush()
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)).all()


def test_chip_and_face_give_l4_tokens_and_raise_the_account(client, person):
    key = kiosk()
    assert person.assurance_level == "L2"
    resp = exchange(client, assertion(key, sub="110105 19491231 002x"))  # as normalised
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert "refresh_token" not in body  # kiosk sessions are short
    idt = claims_of(client, body["id_token"])
    assert idt["aud"] == ["kiosk-1"] and idt["sub"] == person.id
    assert idt["acr"] == "L4" and idt["amr"] == ["idcard", "face"] and idt["channel"] == "kiosk"
    assert idt["name"] == "李四"
    at = claims_of(client, body["access_token"])
    assert at["acr"] == "L4" and at["amr"] == ["idcard", "face"] and at["channel"] == "kiosk"
    db.session.expire_all()
    p = db.session.get(Person, person.id)
    assert p.assurance_level == "L4" and p.assurance_method == "kiosk_chip_face"
    raised = _events("assurance.raised")
    assert len(raised) == 1 and raised[0].details["from"] == "L2"
    assert raised[0].details["to"] == "L4" and raised[0].subject == person.id
    accepted = _events("kiosk.assertion.accepted")
    assert accepted and accepted[0].details["id_number"] == "110105********002X"
    dump = json.dumps([e.details for e in _events("kiosk.assertion.accepted")],
                      ensure_ascii=False)
    assert CITIZEN_ID not in dump


def test_level_is_never_lowered(client, person):
    person.assurance_level = "L5"
    db.session.commit()
    key = kiosk()
    body = exchange(client, assertion(key)).get_json()
    assert claims_of(client, body["id_token"])["acr"] == "L4"  # what a kiosk proves
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L5"
    assert not _events("assurance.raised")


def test_another_kiosks_key_is_invalid_grant(client, person):
    kiosk()
    other = kiosk("kiosk-2")
    refused(exchange(client, assertion(other, iss="kiosk-1")))
    # The same kid as kiosk-1's key, but other key material: the signature fails.
    impostor = new_key("kiosk-1-key")
    refused(exchange(client, assertion(impostor)))
    rejected = _events("kiosk.assertion.rejected")  # recorded under the kiosk named in iss
    assert len(rejected) == 2 and {e.client_id for e in rejected} == {"kiosk-1"}
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L2"


@pytest.mark.parametrize("changes", [
    {"aud": "https://other-idp.example/token"},
    {"aud": None},
    # Times relative to when the test runs, not to collection (a long run before this
    # test would otherwise turn "lives too long" into "already expired").
    lambda now: {"exp": now - 120, "iat": now - 200},
    lambda now: {"exp": now + 600},  # lives longer than five minutes
    lambda now: {"iat": now + 600, "exp": now + 700},
    {"jti": None},
    {"check": None},
    {"check": {"chip": True}},
    {"check": {"chip": True, "face_match": False, "score": 0.2}},
    {"check": {"chip": True, "face_match": True, "score": 0.5}},
    {"check": {"face_match": True, "score": 0.95}},
    {"check": "passed"},
], ids=["wrong-aud", "no-aud", "expired", "too-long", "future", "no-jti", "no-check",
        "no-face", "face-failed", "low-score", "no-chip", "check-not-object"])
def test_unacceptable_assertions_are_invalid_grant(client, person, changes):
    if callable(changes):
        changes = changes(int(time.time()))
    key = kiosk()
    refused(exchange(client, assertion(key, **changes)))
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L2"


def test_replayed_jti_is_invalid_grant(client, person):
    key = kiosk()
    token = assertion(key)
    assert exchange(client, token).status_code == 200
    desc = refused(exchange(client, token))
    assert "replay" in desc


def test_unknown_or_malformed_number_says_so_without_echoing_it(client, person):
    key = kiosk()
    desc = refused(exchange(client, assertion(key, sub=UNKNOWN_ID)))
    assert "No active account" in desc
    desc = refused(exchange(client, assertion(key, sub="110105194912310021")))  # bad check
    assert "GB 11643" in desc
    rejected = _events("kiosk.assertion.rejected")
    assert len(rejected) == 2 and rejected[0].client_id == "kiosk-1"
    assert UNKNOWN_ID not in json.dumps([e.details for e in rejected])


def test_locked_person_is_refused(client, person):
    person.status = "locked"
    db.session.commit()
    key = kiosk()
    assert "No active account" in refused(exchange(client, assertion(key)))


def test_public_and_non_kiosk_clients_are_unauthorized(ctx, client, person):
    # Registration refuses jwt-bearer for a website; one edited into that shape behind
    # the registration's back is still refused.
    web_key = kiosk("web-rp")
    db.session.execute(db.update(Client).where(Client.client_id == "web-rp").values(channel="web"))
    db.session.commit()
    forget_client("web-rp")
    refused(exchange(client, assertion(web_key, iss="web-rp")), "unauthorized_client")
    # A public client cannot be registered for this grant; one edited into that shape
    # behind the registration's back is still refused.
    pub_key = new_key("pub-key")
    register_client(client_id="pub", name="pub", secret=None, auth_method="none",
                    redirect_uris=[], grant_types=[DEVICE_CODE], post_logout_redirect_uris=[],
                    backchannel_logout_uri=None, first_party=True, sensitive_scopes=[],
                    channel="kiosk", jwks=None, id_token_alg=None)
    row = db.session.scalar(db.select(Client).where(Client.client_id == "pub"))
    row.client_metadata = {**row.client_metadata, "grant_types": [JWT_BEARER],
                           "jwks": {"keys": [pub_key.as_dict(private=False)]}}
    db.session.commit()
    forget_client("pub")
    refused(exchange(client, assertion(pub_key, iss="pub")), "unauthorized_client")
    refused(exchange(client, assertion(pub_key, iss="nobody")))
    refused(client.post("/token", data={"grant_type": JWT_BEARER}), "invalid_request")
    refused(client.post("/token", data={"grant_type": JWT_BEARER, "assertion": "x.y.z"}))


# ---------------------------------------------------------------- the demo kiosk screen

@pytest.fixture
def demo(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "KIOSK_DEMO", True)
    return ctx


def _csrf(browser, path):
    return form_fields(browser.get(path).get_data(as_text=True))["csrf_token"]


def test_demo_is_off_unless_configured(ctx, client, monkeypatch):
    monkeypatch.setitem(ctx.config, "KIOSK_DEMO", False)
    assert client.get("/demo/kiosk/").status_code == 404
    monkeypatch.setitem(ctx.config, "KIOSK_DEMO", None)
    monkeypatch.setitem(ctx.config, "CHANNEL_DEMOS", False)
    assert client.get("/demo/kiosk/").status_code == 404


def test_demo_card_path_signs_in_at_l4_with_short_idle_session(demo, client, person):
    from idp.authn import session as sso

    home = client.get("/demo/kiosk/").get_data(as_text=True)
    assert "扫码登录" in home and "刷身份证" in home
    token = _csrf(client, "/demo/kiosk/card")
    bad = client.post("/demo/kiosk/card", data={"csrf_token": token, "id_number": CITIZEN_ID})
    assert bad.status_code == 400 and "人脸比对未通过" in bad.get_data(as_text=True)
    resp = client.post("/demo/kiosk/card", data={"csrf_token": token, "id_number": CITIZEN_ID,
                                                 "face_match": "yes"})
    assert resp.status_code == 302
    page = client.get("/demo/kiosk/").get_data(as_text=True)
    assert "李*" in page and CITIZEN_ID not in page and "李四" not in page
    assert 'id="kiosk-acr">L4<' in page and 'data-kiosk-idle="120"' in page
    with demo.test_request_context("/", headers={"Cookie": _cookie(client)}):
        sess = sso.current()
        assert sess.channel == "kiosk" and sess.acr == "L4" and sess.idle_timeout == 120
    assert client.post("/demo/kiosk/ping", headers={"X-CSRFToken": token}).get_json() == {
        "active": True}
    out = client.post("/demo/kiosk/logout", data={"csrf_token": token, "reason": "idle"})
    assert out.status_code == 302
    assert "已自动退出" in client.get(out.headers["Location"]).get_data(as_text=True)
    assert client.post("/demo/kiosk/ping", headers={"X-CSRFToken": token}).get_json() == {
        "active": False}


def _cookie(browser):
    c = browser.get_cookie("idp_sso")
    return f"idp_sso={c.value}" if c else ""


def test_demo_device_path_polls_until_the_phone_approves(demo, client, person):
    token = _csrf(client, "/demo/kiosk/")
    page = client.post("/demo/kiosk/device", data={"csrf_token": token})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html
    code = html.split('id="kiosk-user-code">')[1].split("<")[0]
    headers = {"X-CSRFToken": token}
    assert client.post("/demo/kiosk/device/poll", headers=headers).get_json() == {
        "state": "pending"}

    phone = demo.test_client()
    resp = phone.get("/device?user_code=" + code)
    fields = form_fields(phone.get(resp.headers["Location"]).get_data(as_text=True))
    phone.post("/login", data={**fields, "username": CITIZEN_ID, "password": CITIZEN_PASSWORD})
    confirm = phone.get("/device?user_code=" + code).get_data(as_text=True)
    assert "政务服务自助终端（演示）" in confirm
    phone.post("/device", data={"csrf_token": form_fields(confirm)["csrf_token"],
                                "user_code": code, "decision": "allow"})

    assert client.post("/demo/kiosk/device/poll", headers=headers).get_json() == {
        "state": "done"}
    page = client.get("/demo/kiosk/").get_data(as_text=True)
    assert "李*" in page and 'id="kiosk-acr">L2<' in page  # what the phone's password proves


def test_demo_device_path_keeps_the_approving_sessions_ceiling(demo, client, person):
    """A phone signed in by QR scan holds its app's level (L2: a password on the app),
    though pwd + qr on a real-name account would prove L3 on their own. The kiosk
    session started from that phone's approval must not be recomputed above it."""
    from flask import g

    from idp.authn import session as sso

    person.assurance_level = "L3"
    db.session.commit()
    token = _csrf(client, "/demo/kiosk/")
    html = client.post("/demo/kiosk/device", data={"csrf_token": token}).get_data(as_text=True)
    code = html.split('id="kiosk-user-code">')[1].split("<")[0]

    phone = demo.test_client()
    with demo.test_request_context("/"):
        sess = sso.start(person, ["pwd", "qr"], "L2")
        cookie = g.pop("idp_set_sso_cookie")
    assert sess.acr == "L2"
    phone.set_cookie(demo.config["SSO_COOKIE_NAME"], cookie)
    confirm = phone.get("/device?user_code=" + code).get_data(as_text=True)
    phone.post("/device", data={"csrf_token": form_fields(confirm)["csrf_token"],
                                "user_code": code, "decision": "allow"})

    assert client.post("/demo/kiosk/device/poll", headers={"X-CSRFToken": token}
                       ).get_json() == {"state": "done"}
    page = client.get("/demo/kiosk/").get_data(as_text=True)
    assert 'id="kiosk-acr">L2<' in page and 'id="kiosk-acr">L3<' not in page
