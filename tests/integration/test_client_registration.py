"""Dynamic client registration (RFC 7591/7592) as the onboarding path: an operator's
initial access token, a pending client that signs nobody in, approval (with sensitive
scopes only when granted), management with the registration access token."""

from __future__ import annotations

import base64

from idp import onboarding
from idp.oidc.registration import issue_initial_token
from tests.helpers import REDIRECT, authorize_url, follow_login, pkce_pair, query

METADATA = {"client_name": "社保查询系统", "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid profile idcard"}


def _register(client, token, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/connect/register", json=body or METADATA, headers=headers)


def _basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode())
            .decode()}


def test_registration_needs_an_operators_initial_access_token(client):
    assert _register(client, None).status_code in (401,)
    assert _register(client, "made-up-token").status_code in (401,)


def test_initial_access_token_is_single_use_and_spent_only_on_success(client):
    token = issue_initial_token(actor="test", note="社保局")["initial_access_token"]
    bad = _register(client, token, {**METADATA, "redirect_uris": ["http://rp.example/cb"]})
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_client_metadata"
    ok = _register(client, token)
    assert ok.status_code == 201, ok.get_json()
    assert _register(client, token).status_code in (401,)


def test_pending_client_signs_nobody_in_until_approved(client, person):
    from idp.audit import flush
    from idp.audit.models import AuditEvent
    from idp.extensions import db

    token = issue_initial_token(actor="test")["initial_access_token"]
    reg = _register(client, token).get_json()
    assert reg["registration_status"] == "pending"
    assert reg["client_secret"] and reg["registration_access_token"]
    assert reg["registration_client_uri"].endswith("/connect/register/" + reg["client_id"])
    from tests.helpers import RP

    rp = RP(reg["client_id"], reg["client_secret"])
    page = client.get(authorize_url(rp))
    assert page.status_code == 400 and "invalid_client" in page.get_data(as_text=True)
    tok = client.post("/token", data={"grant_type": "client_credentials"},
                      headers=_basic(rp.client_id, rp.secret))
    assert tok.status_code in (400, 401)

    # Approved without the sensitive scope it asked for: live, without idcard.
    onboarding.approve_client(rp.client_id, actor="admin:wang")
    verifier, challenge = pkce_pair()
    resp = follow_login(client, client.get(authorize_url(
        rp, scope="openid idcard", code_challenge=challenge, code_challenge_method="S256")))
    code = query(resp.headers["Location"])["code"]
    issued = client.post("/token", data={"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": REDIRECT, "code_verifier": verifier},
                         headers=_basic(rp.client_id, rp.secret)).get_json()
    assert issued["scope"].split() == ["openid"]
    flush()
    actions = set(db.session.scalars(db.select(AuditEvent.event).where(
        AuditEvent.client_id == rp.client_id)))
    assert {"client.registered", "client.approved", "client.status_changed"} <= actions


def test_sensitive_scope_only_when_the_approver_grants_it(client):
    from idp.clients import find_client

    token = issue_initial_token(actor="test")["initial_access_token"]
    cid = _register(client, token).get_json()["client_id"]
    assert onboarding.requested(onboarding.pending_clients()[0])["sensitive_scopes"] == [
        "idcard"]
    onboarding.approve_client(cid, actor="admin:li", grant_sensitive=True)
    assert find_client(cid).allowed_sensitive_scopes == ["idcard"]


def test_reject_removes_the_application(client):
    from idp import client_admin

    token = issue_initial_token(actor="test")["initial_access_token"]
    reg = _register(client, token).get_json()
    onboarding.reject_client(reg["client_id"], actor="admin:li", reason="材料不全")
    assert client_admin.get(reg["client_id"]) is None
    auth = {"Authorization": "Bearer " + reg["registration_access_token"]}
    gone = client.get(f"/connect/register/{reg['client_id']}", headers=auth)
    assert gone.status_code in (401,)


def test_management_with_the_registration_access_token(client):
    token = issue_initial_token(actor="test")["initial_access_token"]
    reg = _register(client, token).get_json()
    cid, uri = reg["client_id"], f"/connect/register/{reg['client_id']}"
    auth = {"Authorization": "Bearer " + reg["registration_access_token"]}
    read = client.get(uri, headers=auth)
    assert read.status_code == 200 and read.get_json()["client_name"] == "社保查询系统"
    assert "client_secret" not in read.get_json()
    assert client.get(uri).status_code in (401,)
    assert client.get(uri, headers={"Authorization": "Bearer wrong"}).status_code in (401,)
    # Another client's token does not open this registration.
    other = _register(client, issue_initial_token(actor="t")["initial_access_token"]).get_json()
    other_auth = {"Authorization": "Bearer " + other["registration_access_token"]}
    assert client.get(uri, headers=other_auth).status_code in (401,)

    updated = client.put(uri, headers=auth, json={
        **METADATA, "client_id": cid, "redirect_uris": [REDIRECT, "https://rp.example/cb2"]})
    assert updated.status_code == 200, updated.get_json()
    assert updated.get_json()["redirect_uris"] == [REDIRECT, "https://rp.example/cb2"]
    bad = client.put(uri, headers=auth, json={**METADATA, "client_id": cid,
                                              "redirect_uris": ["http://evil.example/cb"]})
    assert bad.status_code == 400

    rotated = client.post(uri + "/secret", headers=auth)
    assert rotated.status_code == 200
    new = rotated.get_json()
    assert new["client_secret"] != reg["client_secret"]
    # The registration access token rotates with the secret.
    assert client.get(uri, headers=auth).status_code in (401,)
    auth = {"Authorization": "Bearer " + new["registration_access_token"]}
    assert client.delete(uri, headers=auth).status_code == 204
    assert client.get(uri, headers=auth).status_code in (401,)


def test_discovery_names_the_registration_endpoint(client):
    d = client.get("/.well-known/openid-configuration").get_json()
    assert d["registration_endpoint"] == "http://localhost/connect/register"
