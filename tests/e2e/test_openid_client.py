"""An independent relying party (openid-client 5.x on Node) against ``idp serve``.

Nothing of the provider's own code runs on the client side: discovery, the
authorization request with PKCE/state/nonce, ID-token validation, userinfo, refresh,
introspection and revocation are all openid-client's; the browser part is plain
HTTP with a cookie jar (see rp_flow.mjs).
"""

from __future__ import annotations

import json

import pytest
from joserfc.jwk import ECKey

from .node_script import run_script
from .rp_result import explain as _explain
from .rp_result import ok
from .rp_result import refused as _refused


def refused(result: dict, step: str, error: str, status: int | None = None) -> dict:
    """Refused by the provider itself: openid-client raises an OPError."""
    return _refused(result, step, error, status, error_name="OPError")


pytestmark = pytest.mark.node

CITIZEN_ID = "11010519491231002X"
# As a person might type it: grouped with spaces, lower-case x, full-width digits.
CITIZEN_TYPED = "１１０１０５ 19491231 002x"
CITIZEN_NAME = "王五"
CITIZEN_PASSWORD = "E2e-Password-2026"
CITIZEN_PHONE = "13912345678"
REDIRECT = "http://127.0.0.1/rp/callback"


@pytest.fixture(scope="module")
def citizen(live_idp):
    out = live_idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", CITIZEN_NAME,
                           "--password", CITIZEN_PASSWORD, "--phone", CITIZEN_PHONE)
    assert out["id_number"] == "110105********002X"  # the CLI never echoes the full number
    return out


@pytest.fixture(scope="module")
def basic_client(live_idp):
    out = live_idp.run_cli("client", "add", "--client-id", "e2e-basic", "--name", "端到端测试应用",
                           "--redirect-uri", REDIRECT)
    assert out["token_endpoint_auth_method"] == "client_secret_basic" and out["client_secret"]
    return out


def run_rp(node: str, live_idp, scenario: str, client: dict, **extra) -> dict:
    config = {"scenario": scenario, "issuer": live_idp.issuer, "username": CITIZEN_TYPED,
              "password": CITIZEN_PASSWORD, "scope": "openid profile phone",
              "client": {"redirect_uri": REDIRECT, **client}, **extra}
    return run_script(node, "rp_flow.mjs", config, idp=live_idp, timeout=90)


def check_discovery(result: dict, issuer: str) -> None:
    d = ok(result, "discovery")
    assert d["issuer_url"] == issuer
    assert d["code_challenge_methods"] == ["S256"]
    assert d["iss_parameter"] is True


def check_id_token(step: dict, issuer: str, client_id: str) -> None:
    c = step["id_token_claims"]
    assert c["iss"] == issuer and c["aud"] == [client_id]
    assert c["nonce_matches"] is True and c["at_hash"] is True and c["sid"] is True
    assert c["amr"] == ["pwd"] and c["acr"] == "L2"
    assert c["name"] == CITIZEN_NAME and c["id_number_masked"] == "110105********002X"
    assert c["sub"] and CITIZEN_ID not in c["sub"]  # an opaque id, never the ID number
    assert step["token_type"].lower() == "bearer" and step["access_token_is_jwt"] is True
    assert step["has_refresh_token"] is True and step["scope"] == "openid profile phone"


def test_code_flow_userinfo_refresh_introspection_revocation(node, live_idp, citizen,
                                                             basic_client):
    r = run_rp(node, live_idp, "full", {
        "client_id": basic_client["client_id"], "client_secret": basic_client["client_secret"],
        "token_endpoint_auth_method": "client_secret_basic"})
    assert r["completed"] is True, _explain(r, "flow did not complete")
    check_discovery(r, live_idp.issuer)

    a = ok(r, "authorize")
    assert a["login_shown"] and a["consent_shown"], a  # third-party client: consent asked
    assert a["login_form"] == {"has_csrf_token": True, "has_rid": True}
    assert a["trail"][:3] == ["GET /authorize 302", "GET /login 200", "POST /login 302"]
    assert "POST /consent 302" in a["trail"]
    assert a["has_code"] and a["state_echoed"] and a["iss_param"] == live_idp.issuer

    cb = ok(r, "callback")  # openid-client validated state, iss, PKCE, ID token, at_hash
    check_id_token(cb, live_idp.issuer, "e2e-basic")
    sub = cb["id_token_claims"]["sub"]

    info = ok(r, "userinfo")
    assert info["sub"] == sub and info["name"] == CITIZEN_NAME
    assert info["phone_number"] == CITIZEN_PHONE

    at = ok(r, "introspect_access")
    assert at["active"] is True and at["client_id"] == "e2e-basic" and at["sub"] == sub
    rt = ok(r, "introspect_refresh")
    assert rt["active"] is True and rt["token_type"] == "refresh_token"

    ref = ok(r, "refresh")
    assert ref["refresh_token_rotated"] and ref["access_token_changed"]
    assert ref["has_id_token"] and ref["same_sub"] and ref["same_sid"]
    assert ok(r, "userinfo_after_refresh")["sub"] == sub
    refused(r, "refresh_reuse", "invalid_grant", 400)
    # Reuse detection revoked the grant: the rotated refresh token is dead too.
    assert ok(r, "introspect_rotated_after_reuse")["active"] is False

    again = ok(r, "authorize_again")
    assert again["trail"] == ["GET /authorize 302"], again  # SSO; consent remembered
    assert not again["login_shown"] and not again["consent_shown"]
    cb2 = ok(r, "callback_again")
    check_id_token(cb2, live_idp.issuer, "e2e-basic")
    assert cb2["same_sid"] is True

    ok(r, "revoke_access")
    assert ok(r, "introspect_access_after_revoke")["active"] is False
    refused(r, "userinfo_after_revoke", "invalid_token", 401)
    assert ok(r, "introspect_refresh_before_revoke")["active"] is True
    ok(r, "revoke_refresh")
    assert ok(r, "introspect_refresh_after_revoke")["active"] is False
    refused(r, "refresh_after_revoke", "invalid_grant", 400)


def test_private_key_jwt_client_authentication(node, live_idp, citizen, tmp_path):
    key = ECKey.generate_key("P-256", private=True,
                             parameters={"kid": "e2e-rp-1", "alg": "ES256", "use": "sig"})
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    out = live_idp.run_cli("client", "add", "--client-id", "e2e-pkjwt", "--redirect-uri",
                           REDIRECT, "--auth-method", "private_key_jwt", "--jwks",
                           str(jwks_file), "--first-party")
    assert out["token_endpoint_auth_method"] == "private_key_jwt"
    assert out["client_secret"] is None

    r = run_rp(node, live_idp, "private_key_jwt", {
        "client_id": "e2e-pkjwt", "token_endpoint_auth_method": "private_key_jwt",
        "jwk": key.as_dict(private=True)})
    assert r["completed"] is True, _explain(r, "flow did not complete")
    check_discovery(r, live_idp.issuer)
    a = ok(r, "authorize")
    assert a["login_shown"] and not a["consent_shown"]  # first party: no consent page
    check_id_token(ok(r, "callback"), live_idp.issuer, "e2e-pkjwt")
    ok(r, "userinfo")
    assert ok(r, "introspect_access")["active"] is True  # private_key_jwt at /introspect
    assert ok(r, "refresh")["refresh_token_rotated"] is True
    ok(r, "revoke_refresh")  # private_key_jwt at /revoke
    assert ok(r, "introspect_access_after_revoke")["active"] is False
    refused(r, "refresh_after_revoke", "invalid_grant", 400)


def test_wrong_client_secret_is_invalid_client(node, live_idp, citizen, basic_client):
    r = run_rp(node, live_idp, "wrong_secret", {
        "client_id": basic_client["client_id"], "client_secret": basic_client["client_secret"],
        "token_endpoint_auth_method": "client_secret_basic"},
        wrong_secret=basic_client["client_secret"][:-2] + "xx")
    assert r["completed"] is True, _explain(r, "flow did not complete")
    refused(r, "callback_wrong_secret", "invalid_client", 401)
    # The refusal did not consume the code: the right secret still redeems it.
    ok(r, "callback_right_secret")


def test_public_client_pkce_and_revocation_without_secret(node, live_idp, citizen):
    out = live_idp.run_cli("client", "add", "--client-id", "e2e-public", "--public",
                           "--redirect-uri", REDIRECT)
    assert out["token_endpoint_auth_method"] == "none" and out["client_secret"] is None
    r = run_rp(node, live_idp, "public_revoke", {
        "client_id": "e2e-public", "token_endpoint_auth_method": "none"})
    assert r["completed"] is True, _explain(r, "flow did not complete")
    check_id_token(ok(r, "callback"), live_idp.issuer, "e2e-public")
    # Discovery lists "none" for revocation: a public client can revoke its own token.
    ok(r, "revoke_refresh")
    refused(r, "refresh_after_revoke", "invalid_grant", 400)


def _silent(node, live_idp, basic_client) -> dict:
    return run_rp(node, live_idp, "silent", {
        "client_id": basic_client["client_id"], "client_secret": basic_client["client_secret"],
        "token_endpoint_auth_method": "client_secret_basic"})


def test_silent_authentication_without_session_is_login_required(node, live_idp, basic_client):
    r = _silent(node, live_idp, basic_client)
    assert r["completed"] is True, _explain(r, "flow did not complete")
    a = ok(r, "authorize")
    assert a["trail"] == ["GET /authorize 302"]  # straight back: never a login page
    assert a["error_param"] == "login_required" and a["state_echoed"] and not a["has_code"]


def test_silent_authentication_error_is_readable_by_openid_client(node, live_idp,
                                                                 basic_client):
    r = _silent(node, live_idp, basic_client)
    a = ok(r, "authorize")
    assert a["iss_param"] == live_idp.issuer, _explain(r, "RFC 9207 §2: iss on error responses")
    refused(r, "callback", "login_required")
