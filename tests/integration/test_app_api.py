"""The mobile app's API (/api/app): only the app's own live tokens, each request decided
once, QR tickets bound to the first scanner only."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytest

from idp import audit
from idp.audit import AuditEvent
from idp.channels import approvals
from idp.clients import register_client
from idp.extensions import db
from idp.oidc.tokens import decode_access_token, sign
from idp.store import store
from tests.helpers import (
    RP,
    authorize_url,
    exchange,
    follow_login,
    make_client,
    make_person,
    pkce_pair,
    query,
    tokens_for,
)

OTHER_ID = "110105199003071239"
OTHER_PASSWORD = "Other-Pass-77"


def make_app_client(client_id="gov-app") -> RP:
    register_client(client_id=client_id, name="政务服务App", secret=None, auth_method="none",
                    redirect_uris=["cn.gov.app:/oauth"], grant_types=[],
                    post_logout_redirect_uris=[], backchannel_logout_uri=None,
                    first_party=True, sensitive_scopes=[], channel="app", jwks=None,
                    id_token_alg=None)
    return RP(client_id, None, "cn.gov.app:/oauth")


def app_tokens(ctx, **login) -> dict:
    """Signs in through the app's own code + PKCE flow, in a browser of its own."""
    browser = ctx.test_client()
    rp = RP("gov-app", None, "cn.gov.app:/oauth")
    verifier, challenge = pkce_pair()
    resp = follow_login(browser, browser.get(authorize_url(
        rp, scope="openid profile offline_access", code_challenge=challenge,
        code_challenge_method="S256")), **login)
    q = query(resp.headers["Location"])
    assert "code" in q, q
    resp = exchange(browser, rp, q["code"], verifier)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def bearer(token: str) -> dict:
    return {"Authorization": "Bearer " + token}


def expire(aid: str) -> None:
    a = approvals.get(aid)
    a.expires = time.time() - 1
    store().set(f"approval:{aid}", asdict(a), 120)


def events(name: str) -> list[AuditEvent]:
    audit.flush()
    db.session.expire_all()
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)))


@pytest.fixture
def app_rp(ctx):
    return make_app_client()


@pytest.fixture
def app_token(ctx, person, app_rp):
    return app_tokens(ctx)["access_token"]


# -- who may call it ------------------------------------------------------------------


def test_no_token_is_a_bare_bearer_challenge(client, ctx):
    resp = client.get("/api/app/requests")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.get_json()["error"] == "invalid_request"
    assert "Set-Cookie" not in resp.headers


def test_garbage_expired_and_revoked_tokens_are_invalid_token(client, ctx, app_token):
    assert client.get("/api/app/requests", headers=bearer(app_token)).status_code == 200

    bad = client.get("/api/app/requests", headers=bearer(app_token[:-4] + "AAAA"))
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]

    claims = dict(decode_access_token(app_token).claims)
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 10)
    old = sign(claims, ctx.config["ACCESS_TOKEN_ALG"], typ="at+jwt")
    resp = client.get("/api/app/requests", headers=bearer(old))
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_token"

    # RFC 7009, by the public app itself.
    assert client.post("/revoke", data={"token": app_token, "client_id": "gov-app"}
                       ).status_code == 200
    resp = client.get("/api/app/requests", headers=bearer(app_token))
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_token"


def test_a_websites_token_cannot_use_the_app_api(client, ctx, person):
    rp = make_client()
    web = tokens_for(ctx.test_client(), rp)
    resp = client.get("/api/app/requests", headers=bearer(web["access_token"]))
    assert resp.status_code == 403
    assert resp.get_json()["error"] == "insufficient_scope"
    a = approvals.create("ciba", rp.client_id, ttl=60, person_id=person.id)
    resp = client.post(f"/api/app/requests/{a.id}", headers=bearer(web["access_token"]),
                       json={"decision": "approve"})
    assert resp.status_code == 403 and approvals.get(a.id).state == "pending"


def test_refreshed_app_token_rotates_and_still_works(client, ctx, person, app_rp):
    first = app_tokens(ctx)
    resp = client.post("/token", data={"grant_type": "refresh_token", "client_id": "gov-app",
                                       "refresh_token": first["refresh_token"]})
    body = resp.get_json()
    assert resp.status_code == 200 and body["refresh_token"] != first["refresh_token"]
    assert decode_access_token(body["access_token"]).claims["channel"] == "app"
    assert client.get("/api/app/requests", headers=bearer(body["access_token"])
                      ).status_code == 200
    # The rotated-out refresh token is dead, and using it kills the family.
    again = client.post("/token", data={"grant_type": "refresh_token", "client_id": "gov-app",
                                        "refresh_token": first["refresh_token"]})
    assert again.get_json()["error"] == "invalid_grant"
    resp = client.get("/api/app/requests", headers=bearer(body["access_token"]))
    assert resp.status_code == 401


# -- pending requests and decisions ---------------------------------------------------


def test_lists_only_this_persons_pending_requests_in_public_form(client, ctx, person,
                                                                 app_token):
    other = make_person(OTHER_ID, "王五", OTHER_PASSWORD, "13700001111")
    mine = approvals.create("ciba", "hall-1", ttl=60, person_id=person.id,
                            binding_message="柜台 A3", extra={"clerk": "c-9"})
    approvals.create("ciba", "hall-1", ttl=60, person_id=other.id)
    gone = approvals.create("ciba", "hall-1", ttl=60, person_id=person.id)
    expire(gone.id)
    resp = client.get("/api/app/requests", headers=bearer(app_token))
    listed = resp.get_json()["requests"]
    assert [r["id"] for r in listed] == [mine.id]
    assert listed[0]["binding_message"] == "柜台 A3"
    assert "person_id" not in listed[0] and "extra" not in listed[0]
    assert "c-9" not in resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"


def test_approve_once_with_the_app_sessions_acr_and_amr(client, ctx, person, app_token):
    a = approvals.create("ciba", "hall-1", ttl=60, person_id=person.id)
    url = f"/api/app/requests/{a.id}"
    resp = client.post(url, headers=bearer(app_token), json={"decision": "approve"})
    assert resp.status_code == 200 and resp.get_json()["request"]["state"] == "approved"
    done = approvals.get(a.id)
    assert done.amr == ["pwd"] and done.acr == "L2"
    again = client.post(url, headers=bearer(app_token), json={"decision": "deny"})
    assert again.status_code == 409 and again.get_json()["error"] == "already_decided"
    assert approvals.get(a.id).state == "approved"
    [entry] = events("approval.decided")
    assert entry.details["decision"] == "approved" and entry.subject == person.id
    # Consumed once, for the one exchange it allows.
    assert approvals.consume(a.id) is not None
    assert approvals.consume(a.id) is None


def test_deny_path(client, ctx, person, app_token):
    a = approvals.create("ciba", "hall-1", ttl=60, person_id=person.id)
    resp = client.post(f"/api/app/requests/{a.id}", headers=bearer(app_token),
                       json={"decision": "deny"})
    assert resp.status_code == 200 and resp.get_json()["request"]["state"] == "denied"
    assert approvals.consume(a.id) is None
    assert client.get("/api/app/requests", headers=bearer(app_token)).get_json() == {
        "requests": []}


def test_bad_decisions(client, ctx, person, app_token):
    other = make_person(OTHER_ID, "王五", OTHER_PASSWORD, "13700001111")
    theirs = approvals.create("ciba", "hall-1", ttl=60, person_id=other.id)
    resp = client.post(f"/api/app/requests/{theirs.id}", headers=bearer(app_token),
                       json={"decision": "approve"})
    assert resp.status_code == 404 and approvals.get(theirs.id).state == "pending"
    assert client.post("/api/app/requests/nope", headers=bearer(app_token),
                       json={"decision": "approve"}).status_code == 404

    a = approvals.create("ciba", "hall-1", ttl=60, person_id=person.id)
    for body in ({"decision": "yes"}, {}, ["approve"]):
        resp = client.post(f"/api/app/requests/{a.id}", headers=bearer(app_token), json=body)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"
    expire(a.id)
    resp = client.post(f"/api/app/requests/{a.id}", headers=bearer(app_token),
                       json={"decision": "approve"})
    assert resp.status_code == 410 and resp.get_json()["error"] == "expired"


def test_a_weaker_app_session_cannot_approve_a_stronger_request(client, ctx, person,
                                                                  app_token):
    a = approvals.create("ciba", "hall-1", ttl=60, person_id=person.id, acr_asked="L3")
    url = f"/api/app/requests/{a.id}"
    resp = client.post(url, headers=bearer(app_token), json={"decision": "approve"})
    assert resp.status_code == 403
    assert resp.get_json()["error"] == "insufficient_user_authentication"
    assert approvals.get(a.id).state == "pending"
    assert client.post(url, headers=bearer(app_token), json={"decision": "deny"}
                       ).status_code == 200


# -- scanning -------------------------------------------------------------------------


def test_scan_binds_once_and_says_what_it_asks(client, ctx, person, app_token):
    other = make_person(OTHER_ID, "王五", OTHER_PASSWORD, "13700001111")
    web = make_client("city-site")
    a = approvals.create("qr", web.client_id, ttl=120,
                         extra={"browser": "b-1", "client_name": "市社保网站"})
    resp = client.post("/api/app/qr/scan", headers=bearer(app_token),
                       json={"ticket": f"{ctx.config['ISSUER']}/qr/s/{a.id}"})
    assert resp.status_code == 200, resp.get_json()
    shown = resp.get_json()["request"]
    assert shown["client_name"] == "市社保网站" and shown["channel"] == "web"
    assert "browser" not in resp.get_data(as_text=True)
    assert approvals.get(a.id).person_id == person.id
    assert [r["id"] for r in client.get("/api/app/requests", headers=bearer(app_token))
            .get_json()["requests"]] == [a.id]
    assert events("qr.scanned")

    # A second scan, by the same app or another person's, learns nothing and changes nothing.
    again = client.post("/api/app/qr/scan", headers=bearer(app_token), json={"ticket": a.id})
    assert again.status_code == 409 and again.get_json()["error"] == "already_scanned"
    theirs = app_tokens(ctx, username=OTHER_ID, password=OTHER_PASSWORD)["access_token"]
    resp = client.post("/api/app/qr/scan", headers=bearer(theirs), json={"ticket": a.id})
    assert resp.status_code == 409
    assert approvals.get(a.id).person_id == person.id
    assert client.post(f"/api/app/requests/{a.id}", headers=bearer(theirs),
                       json={"decision": "approve"}).status_code == 404
    assert other.id != person.id


def test_scanning_unknown_foreign_and_expired_tickets(client, ctx, person, app_token):
    for ticket in ("no-such-ticket", "https://evil.example/qr/s/abc", "", None, 5):
        resp = client.post("/api/app/qr/scan", headers=bearer(app_token),
                           json={"ticket": ticket})
        assert resp.status_code == 404 and resp.get_json()["error"] == "unknown_ticket"
    ciba = approvals.create("ciba", "hall-1", ttl=60, person_id=person.id)
    assert client.post("/api/app/qr/scan", headers=bearer(app_token),
                       json={"ticket": ciba.id}).status_code == 404
    # Another issuer's URL with a real ticket is not ours to act on.
    a = approvals.create("qr", "", ttl=120, extra={"browser": "b"})
    resp = client.post("/api/app/qr/scan", headers=bearer(app_token),
                       json={"ticket": f"https://evil.example/qr/s/{a.id}"})
    assert resp.status_code == 404 and approvals.get(a.id).person_id is None
    expire(a.id)
    resp = client.post("/api/app/qr/scan", headers=bearer(app_token), json={"ticket": a.id})
    assert resp.status_code == 410 and resp.get_json()["error"] == "expired_ticket"
    assert approvals.get(a.id).person_id is None


def test_scan_and_list_show_where_the_sign_in_would_happen(client, ctx, person, app_token):
    """QR login hijacking: a code made in someone else's browser. The app is told that
    browser's coarse network and device, and whether it scanned from another network."""
    far = approvals.create("qr", "", ttl=120, extra={
        "browser": "b-1", "network": "203.0.113.0/24", "network_shown": "203.0.113.*",
        "device": "Chrome · Windows"})
    near = approvals.create("qr", "", ttl=120, extra={
        "browser": "b-2", "network": "198.51.100.0/24", "network_shown": "198.51.100.*",
        "device": "Safari · macOS"})
    here = {"REMOTE_ADDR": "198.51.100.77"}
    resp = client.post("/api/app/qr/scan", headers=bearer(app_token), json={"ticket": far.id},
                       environ_base=here)
    shown = resp.get_json()["request"]
    assert shown["network"] == "203.0.113.*" and shown["device"] == "Chrome · Windows"
    assert shown["different_network"] is True
    resp = client.post("/api/app/qr/scan", headers=bearer(app_token), json={"ticket": near.id},
                       environ_base=here)
    assert resp.get_json()["request"]["different_network"] is False
    listed = {r["id"]: r for r in client.get("/api/app/requests", headers=bearer(app_token),
                                             environ_base=here).get_json()["requests"]}
    assert listed[far.id]["different_network"] is True
    assert listed[far.id]["network"] == "203.0.113.*"
    assert listed[far.id]["device"] == "Chrome · Windows"
    assert listed[near.id]["different_network"] is False
    assert "/24" not in json.dumps(listed)  # the masked form only
    scans = {e.details["approval"]: e.details for e in events("qr.scanned")}
    assert scans[far.id]["different_network"] is True
    assert scans[far.id]["app_network"] == "198.51.100.*"
    assert "198.51.100.77" not in json.dumps(scans)
    # Hall and hotline requests carry no browser to describe.
    ciba = approvals.create("ciba", "hall-1", ttl=60, person_id=person.id)
    assert "different_network" not in ciba.public() and "network" not in ciba.public()
