"""Authorization code flow and the token endpoint (RFC 6749 §4.1, OIDC Core §3.1, RFC 7636)."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers import CITIZEN_ID, exchange, get_code, make_client, tokens_for


def _verify_id_token(client, token: str):
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    return jwt.decode(token, jwks, algorithms=["ES256", "RS256"])


def test_code_exchange_issues_id_token_with_required_claims(client, person, rp):
    code, q, verifier = get_code(client, rp, nonce="n-123")
    assert q["iss"] == "http://localhost"  # RFC 9207
    resp = exchange(client, rp, code, verifier)
    body = resp.get_json()
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    idt = _verify_id_token(client, body["id_token"])
    c = idt.claims
    assert c["iss"] == "http://localhost" and c["aud"] == [rp.client_id]
    assert c["sub"] == person.id and c["sub"] != CITIZEN_ID
    assert c["nonce"] == "n-123"
    assert c["amr"] == ["pwd"] and c["acr"] == "L2" and c["sid"]
    assert c["exp"] > c["iat"] >= c["auth_time"] - 1
    assert c["id_number_masked"] == "110105********002X"
    assert "id_number" not in c
    assert idt.header["kid"] and "at_hash" in c


def test_access_token_is_rfc9068_jwt(client, person, rp):
    body = tokens_for(client, rp)
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    at = jwt.decode(body["access_token"], jwks, algorithms=["ES256"])
    assert at.header["typ"] == "at+jwt"
    for claim in ("iss", "exp", "aud", "sub", "client_id", "iat", "jti"):
        assert claim in at.claims
    assert at.claims["client_id"] == rp.client_id


def test_code_is_single_use_and_replay_revokes_issued_tokens(client, person, rp):
    code, _, verifier = get_code(client, rp, scope="openid profile offline_access")
    first = exchange(client, rp, code, verifier).get_json()
    again = exchange(client, rp, code, verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    # What the first exchange issued is now dead.
    info = client.post("/userinfo", headers={"Authorization": "Bearer " + first["access_token"]})
    assert info.status_code == 401
    refresh = client.post("/token", headers=rp.basic, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refresh.get_json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_invalid_client(client, person, rp):
    code, _, verifier = get_code(client, rp)
    rp.secret = "wrong"
    resp = exchange(client, rp, code, verifier)
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


def test_code_of_another_client_is_refused(client, person, rp):
    other = make_client("rp2")
    code, _, verifier = get_code(client, rp)
    resp = exchange(client, other, code, verifier)
    assert resp.get_json()["error"] == "invalid_grant"


def test_redirect_uri_must_match_the_authorization_request(client, person, rp):
    code, _, verifier = get_code(client, rp)
    resp = exchange(client, rp, code, verifier, redirect_uri="https://rp.example/other")
    assert resp.get_json()["error"] == "invalid_grant"


def test_pkce_mismatch_is_invalid_grant(client, person, rp):
    code, _, _ = get_code(client, rp)
    resp = exchange(client, rp, code, "x" * 50)
    assert resp.get_json()["error"] == "invalid_grant"


def test_expired_code_is_refused(ctx, client, person, rp):
    ctx.config["AUTHORIZATION_CODE_TTL"] = 1
    try:
        code, _, verifier = get_code(client, rp)
        time.sleep(1.2)
        resp = exchange(client, rp, code, verifier)
    finally:
        ctx.config["AUTHORIZATION_CODE_TTL"] = 60
    assert resp.get_json()["error"] == "invalid_grant"


def test_public_client_needs_pkce_and_no_secret(client, person):
    pub = make_client("app", public=True)
    resp = client.get(f"/authorize?response_type=code&client_id=app&redirect_uri={pub.redirect_uri}"
                      "&scope=openid&state=s1")
    assert resp.status_code == 302
    loc = resp.headers["Location"]
    assert loc.startswith(pub.redirect_uri) and "error=invalid_request" in loc and "state=s1" in loc
    body = tokens_for(client, pub)
    assert body["id_token"]


def test_plain_pkce_method_is_refused(client, person, rp):
    from tests.helpers import authorize_url, query

    resp = client.get(authorize_url(rp, code_challenge="a" * 43, code_challenge_method="plain"))
    assert resp.status_code == 302
    assert query(resp.headers["Location"])["error"] == "invalid_request"


def test_client_secret_post(client, person):
    rp = make_client("post", auth_method="client_secret_post")
    code, _, verifier = get_code(client, rp)
    resp = client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier, "client_id": rp.client_id, "client_secret": rp.secret})
    assert resp.status_code == 200
    # The registered method is the only one accepted.
    code, _, verifier = get_code(client, rp)
    resp = exchange(client, rp, code, verifier)  # basic auth
    assert resp.get_json()["error"] == "invalid_client"


def test_client_credentials(client, ctx):
    svc = make_client("svc", grant_types=["client_credentials"], redirect_uris=())
    resp = client.post("/token", headers=svc.basic, data={"grant_type": "client_credentials"})
    body = resp.get_json()
    assert resp.status_code == 200 and "refresh_token" not in body and "id_token" not in body
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    claims = jwt.decode(body["access_token"], jwks, algorithms=["ES256"]).claims
    assert claims["sub"] == "svc"
    # A client not registered for the grant is refused.
    web = make_client("web")
    resp = client.post("/token", headers=web.basic, data={"grant_type": "client_credentials"})
    assert resp.get_json()["error"] == "unauthorized_client"


def test_unknown_grant_type(client, rp):
    resp = client.post("/token", headers=rp.basic, data={"grant_type": "password"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "unsupported_grant_type"
