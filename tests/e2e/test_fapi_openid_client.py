"""A FAPI 2.0 relying party (openid-client 5.x on Node, fapi_flow.mjs) against ``idp
serve``: PAR + PKCE + private_key_jwt + DPoP end to end with a bound refresh token and
userinfo with proofs, signed request objects by value and by PAR, JARM validated by the
client, and a FAPI 2.0 client refused when it skips PAR or DPoP. The client is
registered the operator's way: ``idp client add --profile fapi2 --jwks FILE``."""

from __future__ import annotations

import json

import pytest
from joserfc.jwk import ECKey

from .node_script import run_script
from .rp_result import explain, ok
from .rp_result import refused as _refused

pytestmark = pytest.mark.node

CITIZEN_ID = "11010519491231002X"
PASSWORD = "Fapi-E2e-Password-1"
REDIRECT = "http://127.0.0.1/rp/callback"


def refused(result, step, error, status=None):
    return _refused(result, step, error, status, error_name="OPError")


@pytest.fixture(scope="module")
def fapi_client(live_idp, tmp_path_factory):
    live_idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "赵六",
                     "--password", PASSWORD, "--phone", "13912345670")
    key = ECKey.generate_key("P-256", parameters={"kid": "rp-2026", "alg": "ES256"})
    public = key.as_dict(private=False)
    path = tmp_path_factory.mktemp("fapi") / "jwks.json"
    path.write_text(json.dumps({"keys": [{**public, "kid": "rp-2026", "alg": "ES256"}]}))
    out = live_idp.run_cli("client", "add", "--client-id", "tax-filing", "--name", "电子税务局",
                           "--redirect-uri", REDIRECT, "--jwks", str(path),
                           "--profile", "fapi2", "--dpop-bound")
    assert out["profile"] == "fapi2" and out["token_endpoint_auth_method"] == "private_key_jwt"
    private = key.as_dict(private=True)
    return {"client_id": "tax-filing", "redirect_uri": REDIRECT,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwk": {**private, "kid": "rp-2026", "alg": "ES256"}}


def run(node, live_idp, scenario, client):
    return run_script(node, "fapi_flow.mjs", {
        "scenario": scenario, "issuer": live_idp.issuer, "username": CITIZEN_ID,
        "password": PASSWORD, "scope": "openid profile offline_access", "client": client},
        idp=live_idp, timeout=90)


def test_par_pkce_private_key_jwt_dpop_end_to_end(node, live_idp, fapi_client):
    r = run(node, live_idp, "fapi", fapi_client)
    assert r["completed"], explain(r, "flow did not complete")
    d = ok(r, "discovery")
    assert d["par"] == live_idp.issuer + "/par" and "ES256" in d["dpop_algs"]
    assert ok(r, "par")["request_uri_prefix"] == "urn:ietf:params:oauth:request_uri"
    # The pushed parameters do not travel through the browser (openid-client adds its
    # defaults, redirect_uri/response_type/scope, which the provider ignores for the
    # pushed ones, RFC 9126 §4).
    shown = set(ok(r, "authorize_url")["params"])
    assert {"client_id", "request_uri"} <= shown
    assert not shown & {"state", "nonce", "code_challenge", "code_challenge_method"}
    cb = ok(r, "callback")
    assert cb["token_type"] == "DPoP" and cb["has_refresh_token"]
    assert cb["aud"] == ["tax-filing"] and cb["access_token_is_jwt"]
    sub = cb["sub"]
    info = ok(r, "userinfo_dpop")
    assert info["sub"] == sub
    # The resource server demanded its nonce: openid-client's first proof had none, the
    # 401 (use_dpop_nonce, DPoP-Nonce) made it retry once with it; both proofs carry ath.
    assert info["requests"] == [{"nonce": False, "ath": True}, {"nonce": True, "ath": True}]
    refused(r, "userinfo_as_bearer", "invalid_token", 401)
    refused(r, "userinfo_other_key", "invalid_dpop_proof", 401)
    i = ok(r, "introspect")
    assert i["active"] is True and i["token_type"] == "DPoP" and set(i["cnf"]) == {"jkt"}
    refused(r, "refresh_other_key", "invalid_grant", 400)
    ref = ok(r, "refresh")
    assert ref["token_type"] == "DPoP" and ref["rotated"] and ref["sub"] == sub
    assert ok(r, "userinfo_after_refresh")["sub"] == sub
    replay = ok(r, "authorize_replayed_request_uri")
    assert replay["refused"] == {"status": 400, "error": "invalid_request_uri"}


def test_signed_request_objects_by_value_and_by_par(node, live_idp, fapi_client):
    # A plain private_key_jwt client (no FAPI profile) may send a request object by
    # value; the FAPI one only by PAR. So this scenario registers its own client.
    key = ECKey.generate_key("P-256", parameters={"kid": "jar-1", "alg": "ES256"})
    path = live_idp.instance_path / "jar-jwks.json"
    path.write_text(json.dumps({"keys": [{**key.as_dict(private=False), "kid": "jar-1",
                                          "alg": "ES256"}]}))
    live_idp.run_cli("client", "add", "--client-id", "jar-rp", "--redirect-uri", REDIRECT,
                     "--jwks", str(path), "--require-signed-request")
    client = {**fapi_client, "client_id": "jar-rp",
              "jwk": {**key.as_dict(private=True), "kid": "jar-1", "alg": "ES256"}}
    r = run(node, live_idp, "jar", client)
    assert r["completed"], explain(r, "flow did not complete")
    for via in ("by_value", "by_par"):
        assert ok(r, f"authorize_{via}")["callback_query"] == ["code", "state", "iss"], via
        assert ok(r, f"callback_{via}")["aud"] == ["jar-rp"]
    assert ok(r, "authorize_unregistered_key")["refused"] == {
        "status": 400, "error": "invalid_request_object"}


def test_jarm_response_validated_by_the_client(node, live_idp, fapi_client):
    r = run(node, live_idp, "jarm", fapi_client)
    assert r["completed"], explain(r, "flow did not complete")
    assert "jwt" in ok(r, "discovery")["response_modes"]
    assert ok(r, "authorize")["callback_query"] == ["response"]
    assert ok(r, "callback_jarm")["token_type"] == "DPoP"
    assert {"form_post", "form_post.jwt"} <= set(ok(r, "discovery")["response_modes"])
    assert ok(r, "authorize_form_post_jwt")["form_post"] == {"fields": ["response"],
                                                            "noscript_button": True}
    assert ok(r, "callback_form_post_jwt")["token_type"] == "DPoP"
    tampered = r["steps"]["callback_tampered"]
    assert tampered["outcome"] == "error", explain(r, "a forged JARM response was accepted")
    assert tampered["error"]["name"] == "RPError"


def test_fapi_client_refused_without_par_or_dpop(node, live_idp, fapi_client):
    r = run(node, live_idp, "fapi_refusals", fapi_client)
    assert r["completed"], explain(r, "flow did not complete")
    assert ok(r, "authorize_without_par")["refused"] == {"status": 400,
                                                         "error": "invalid_request"}
    refused(r, "callback_without_dpop", "invalid_request", 400)


def test_claims_parameter_requested_by_openid_client(node, live_idp, fapi_client):
    """openid-client pushes a ``claims`` parameter with only the openid scope: the consent
    page lists the claims by name; the ID token carries the id_token member's, userinfo
    the userinfo member's."""
    r = run(node, live_idp, "claims", fapi_client)
    assert r["completed"], explain(r, "flow did not complete")
    assert set(ok(r, "authorize")["claims_shown"]) == {"name", "phone_number",
                                                       "phone_number_verified"}
    cb = ok(r, "callback")
    assert cb["phone_number"] == "13912345670" and cb["name"] is None
    info = ok(r, "userinfo")
    assert info["sub"] == cb["sub"] and info["name"] == "赵六"
    assert info["phone_number_verified"] is True and info["phone_number"] is None
