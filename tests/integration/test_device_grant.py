"""Device authorization grant (RFC 8628): kiosks without a card reader, TV-like screens."""

from __future__ import annotations

import re
import secrets
import time
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.clients import DEVICE_CODE, register_client
from idp.store import store
from tests.helpers import CITIZEN_ID, CITIZEN_PASSWORD, RP, form_fields, query

CODE_RE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


def device_client(client_id="tv1", *, public=True, grants=(DEVICE_CODE,), channel="kiosk"):
    secret = None if public else secrets.token_urlsafe(24)
    register_client(client_id=client_id, name=f"大厅屏幕 {client_id}", secret=secret,
                    auth_method="none" if public else "client_secret_basic", redirect_uris=[],
                    grant_types=list(grants), post_logout_redirect_uris=[],
                    backchannel_logout_uri=None, first_party=False, sensitive_scopes=[],
                    channel=channel, jwks=None, id_token_alg=None)
    return RP(client_id, secret)


def start(client, rp: RP, scope="openid profile"):
    data = {"scope": scope}
    headers = rp.basic if rp.secret else {}
    if not rp.secret:
        data["client_id"] = rp.client_id
    return client.post("/device_authorization", data=data, headers=headers)


def poll(client, rp: RP, device_code):
    data = {"grant_type": DEVICE_CODE, "device_code": device_code}
    if not rp.secret:
        data["client_id"] = rp.client_id
    return client.post("/token", data=data, headers=rp.basic if rp.secret else {})


def sign_in(browser, path="/device"):
    """Open ``path`` signed out: /login, then back to the device page."""
    resp = browser.get(path)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    page = browser.get(resp.headers["Location"])
    fields = form_fields(page.get_data(as_text=True))
    resp = browser.post("/login", data={**fields, "username": CITIZEN_ID,
                                        "password": CITIZEN_PASSWORD})
    assert resp.status_code == 302
    return resp.headers["Location"]


def csrf_of(browser, path="/device"):
    return form_fields(browser.get(path).get_data(as_text=True))["csrf_token"]


def decide(browser, user_code, decision="allow"):
    return browser.post("/device", data={"csrf_token": csrf_of(browser), "user_code": user_code,
                                         "decision": decision})


def claims_of(client, token):
    keys = KeySet.import_key_set(client.get("/jwks").get_json())
    return jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims


def test_discovery_publishes_device_endpoint_and_grants(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["device_authorization_endpoint"] == "http://localhost/device_authorization"
    assert DEVICE_CODE in doc["grant_types_supported"]
    assert "urn:ietf:params:oauth:grant-type:jwt-bearer" in doc["grant_types_supported"]
    assert "authorization_code" in doc["grant_types_supported"]


def test_public_client_full_flow_with_sign_in_redirect(ctx, client, person):
    rp = device_client()
    resp = start(client, rp)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    d = resp.get_json()
    assert CODE_RE.match(d["user_code"])
    assert d["verification_uri"] == "http://localhost/device"
    assert query(d["verification_uri_complete"]) == {"user_code": d["user_code"]}
    assert d["expires_in"] == 600 and d["interval"] == 5 and len(d["device_code"]) >= 40
    # The device code is kept only as a hash.
    assert store().get(f"device:{d['device_code']}") is None

    r = poll(client, rp, d["device_code"])
    assert r.status_code == 400 and r.get_json()["error"] == "authorization_pending"

    browser = ctx.test_client()
    typed = d["user_code"].lower().replace("-", " ")  # as a person might type it
    back = sign_in(browser, "/device?user_code=" + typed)
    assert urlsplit(back).path == "/device"  # back where the person started, not /authorize
    page = browser.get(back).get_data(as_text=True)
    assert d["user_code"] in page and "大厅屏幕 tv1" in page
    assert 'data-scope="profile"' in page and "李*" in page and CITIZEN_ID not in page

    done = decide(browser, typed)
    assert done.status_code == 200 and "已确认登录" in done.get_data(as_text=True)

    r = poll(client, rp, d["device_code"])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert "refresh_token" not in body  # the client is not registered for refresh_token
    idt = claims_of(client, body["id_token"])
    assert idt["aud"] == ["tv1"] and idt["sub"] == person.id
    assert idt["acr"] == "L2" and idt["amr"] == ["pwd"] and idt["channel"] == "kiosk"
    assert "sid" not in idt  # the device is not part of the phone's browser session
    at = claims_of(client, body["access_token"])
    assert at["client_id"] == "tv1" and at["channel"] == "kiosk" and at["acr"] == "L2"
    assert at["scope"] == "openid profile"
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.get_json()["sub"] == person.id

    # Single use: the same device code again is invalid_grant, and the code is spent.
    again = poll(client, rp, d["device_code"])
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert decide(browser, d["user_code"]).status_code == 400


def test_confidential_client_authenticates_and_gets_refresh_token(ctx, client, person):
    rp = device_client("hall-tv", public=False, grants=(DEVICE_CODE, "refresh_token"),
                       channel="hall")
    bad = client.post("/device_authorization", data={"client_id": "hall-tv"})
    assert bad.status_code in (400, 401) and bad.get_json()["error"] == "invalid_client"
    d = start(client, rp).get_json()
    browser = ctx.test_client()
    sign_in(browser)
    assert decide(browser, d["user_code"]).status_code == 200
    body = poll(client, rp, d["device_code"]).get_json()
    assert body["refresh_token"]
    assert claims_of(client, body["id_token"])["channel"] == "hall"  # the client's channel


def test_client_without_the_grant_is_unauthorized(ctx, client):
    rp = device_client("web-only", public=False, grants=("client_credentials",))
    r = start(client, rp)
    assert r.status_code == 400 and r.get_json()["error"] == "unauthorized_client"


def test_slow_down_adds_five_seconds_each_time(ctx, client):
    rp = device_client()
    d = start(client, rp).get_json()
    errors = [poll(client, rp, d["device_code"]).get_json()["error"] for _ in range(3)]
    assert errors == ["authorization_pending", "slow_down", "slow_down"]
    polls = [v for k, v in _store_items(ctx, "device_poll:")]
    assert polls and polls[0]["interval"] == 15


def _store_items(app, prefix):
    s = store()
    if app.config.get("REDIS_URL"):
        raw = s.client.keys(app.config["REDIS_PREFIX"] + prefix + "*")
        keys = [k.decode()[len(app.config["REDIS_PREFIX"]):] for k in raw]
    else:
        from sqlalchemy import text

        from idp.extensions import db

        keys = [r[0] for r in db.session.execute(
            text("SELECT key FROM kv_entry WHERE key LIKE :p"), {"p": prefix + "%"})]
    return [(k, s.get(k)) for k in keys]


def test_denied_is_access_denied(ctx, client, person):
    rp = device_client()
    d = start(client, rp).get_json()
    browser = ctx.test_client()
    sign_in(browser)
    resp = decide(browser, d["user_code"], "deny")
    assert "已拒绝登录" in resp.get_data(as_text=True)
    r = poll(client, rp, d["device_code"])
    assert r.status_code == 400 and r.get_json()["error"] == "access_denied"


def test_expired_device_code_is_expired_token(ctx, client, person, monkeypatch):
    monkeypatch.setitem(ctx.config, "DEVICE_CODE_TTL", 1)
    rp = device_client()
    d = start(client, rp).get_json()
    assert d["expires_in"] == 1
    time.sleep(1.2)
    r = poll(client, rp, d["device_code"])
    assert r.status_code == 400 and r.get_json()["error"] == "expired_token"
    browser = ctx.test_client()
    sign_in(browser)
    late = decide(browser, d["user_code"])
    assert late.status_code == 400 and "验证码无效或已过期" in late.get_data(as_text=True)


def test_unknown_foreign_and_missing_device_codes(ctx, client):
    rp = device_client()
    other = device_client("tv2")
    d = start(client, rp).get_json()
    r = poll(client, other, d["device_code"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    r = poll(client, rp, "not-a-device-code")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    r = client.post("/token", data={"grant_type": DEVICE_CODE, "client_id": "tv1"})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_request"
    # The request of tv1 is untouched by the other client's attempt.
    assert poll(client, rp, d["device_code"]).get_json()["error"] == "authorization_pending"


def test_decision_needs_csrf_token(ctx, client, person):
    rp = device_client()
    d = start(client, rp).get_json()
    browser = ctx.test_client()
    sign_in(browser)
    r = browser.post("/device", data={"user_code": d["user_code"], "decision": "allow"})
    assert r.status_code == 400
    assert poll(client, rp, d["device_code"]).get_json()["error"] == "authorization_pending"


def test_guessing_user_codes_is_limited(ctx, client, person, monkeypatch):
    monkeypatch.setitem(ctx.config, "DEVICE_USER_CODE_ATTEMPTS", 3)
    rp = device_client()
    d = start(client, rp).get_json()
    browser = ctx.test_client()
    sign_in(browser)
    token = csrf_of(browser)
    for guess in ("BBBB-BBBB", "CCCC-CCCC", "hello"):
        r = browser.post("/device", data={"csrf_token": token, "user_code": guess})
        assert r.status_code == 400
    # Now even the right code is refused, for this person and from this address.
    r = browser.post("/device", data={"csrf_token": token, "user_code": d["user_code"]})
    assert r.status_code == 429
    assert browser.get("/device?user_code=" + d["user_code"]).status_code == 429
    assert poll(client, rp, d["device_code"]).get_json()["error"] == "authorization_pending"


def test_entry_page_and_confirm_show_no_decision_before_post(ctx, client, person):
    rp = device_client()
    d = start(client, rp).get_json()
    browser = ctx.test_client()
    sign_in(browser)
    page = browser.get("/device")
    assert page.status_code == 200 and 'name="user_code"' in page.get_data(as_text=True)
    shown = browser.post("/device", data={"csrf_token": csrf_of(browser),
                                          "user_code": d["user_code"]})
    assert shown.status_code == 200 and 'value="allow"' in shown.get_data(as_text=True)
    assert poll(client, rp, d["device_code"]).get_json()["error"] == "authorization_pending"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil",
                                    "/\t/evil.example/", "/\n\\evil.example"])
def test_login_return_path_is_local_only(ctx, target):
    from idp.interaction import PendingRequest

    with ctx.test_request_context("/"):
        rec = PendingRequest(protocol="oidc", client_id="x", params={"client_id": "x"})
        rec.save()
        rec.next = target
        assert rec.resume_url().startswith("/authorize?")
        rec.next = "/device?user_code=BCDF-GHJK"
        assert rec.resume_url() == "/device?user_code=BCDF-GHJK"


def test_links_to_the_device_page_never_count_as_wrong_codes(ctx, client, person,
                                                             monkeypatch):
    """Any web page can make a signed-in browser open /device?user_code=…; if such GETs
    counted, a third party could lock the person out. Only a POST by the person counts,
    and links are no free way to test codes either: past a budget they only fill it in."""
    monkeypatch.setitem(ctx.config, "DEVICE_USER_CODE_ATTEMPTS", 3)
    rp = device_client()
    d = start(client, rp).get_json()
    browser = ctx.test_client()
    sign_in(browser)
    for guess in ("BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD"):
        r = browser.get("/device?user_code=" + guess)
        assert r.status_code == 400 and "验证码无效或已过期" in r.get_data(as_text=True)
    assert store().get(f"device_ucfail:p:{person.id}") is None
    # The preview budget is spent: the right code is filled in, not looked up.
    filled = browser.get("/device?user_code=" + d["user_code"])
    html = filled.get_data(as_text=True)
    assert filled.status_code == 200 and 'value="allow"' not in html
    assert f'value="{d["user_code"]}"' in html
    # The person submits it (POST, CSRF-checked) and is not blocked.
    shown = browser.post("/device", data={"csrf_token": csrf_of(browser),
                                          "user_code": d["user_code"]})
    assert shown.status_code == 200 and 'value="allow"' in shown.get_data(as_text=True)
    assert decide(browser, d["user_code"]).status_code == 200
    assert not _events("device.user_code.failed")


def _events(name):
    from idp import audit
    from idp.audit import AuditEvent
    from idp.extensions import db

    audit.flush()
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)).all()


def test_parallel_wrong_codes_cannot_overshoot_the_limit(ctx, client, person, monkeypatch):
    """Two wrong codes in flight at once, with room for one: the second request arrives
    while the first is being looked up. Counting first and checking the count makes
    one of them the limit's last and the other refused."""
    from idp.channels import device

    monkeypatch.setitem(ctx.config, "DEVICE_USER_CODE_ATTEMPTS", 1)
    browser = ctx.test_client()
    sign_in(browser)
    token = csrf_of(browser)
    real = device._load_by_user_code
    inner: list[int] = []

    def racing(code):
        if not inner:
            inner.append(0)
            inner.append(browser.post("/device", data={"csrf_token": token,
                                                       "user_code": "CCCC-CCCC"}).status_code)
        return real(code)

    monkeypatch.setattr(device, "_load_by_user_code", racing)
    outer = browser.post("/device", data={"csrf_token": token, "user_code": "BBBB-BBBB"})
    assert sorted([inner[1], outer.status_code]) == [400, 429]
    assert len(_events("device.user_code.failed")) == 1
    assert len(_events("device.user_code.blocked")) == 1


@pytest.mark.parametrize("channel", ["kiosk", "web"])
def test_kiosk_screens_never_get_a_refresh_token(ctx, client, person, channel):
    """A shared screen registered for refresh_token (by mistake or on purpose) and asking
    for offline_access still gets none: the next person at the kiosk must not inherit
    a sign-in. (A web client's device grant is a kiosk's too.)"""
    rp = device_client("kiosk-rt", public=False, grants=(DEVICE_CODE, "refresh_token"),
                       channel=channel)
    d = start(client, rp, scope="openid profile offline_access").get_json()
    browser = ctx.test_client()
    sign_in(browser)
    assert decide(browser, d["user_code"]).status_code == 200
    resp = poll(client, rp, d["device_code"])
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["access_token"] and "refresh_token" not in body
    assert claims_of(client, body["access_token"])["channel"] == "kiosk"
