"""private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9)."""

from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.helpers import exchange, get_code, make_client


def _assertion(key, client_id="pkj", aud="http://localhost/token", jti=None, exp_in=60, **over):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + exp_in,
              "jti": jti or secrets.token_urlsafe(8), **over}
    return jwt.encode({"alg": "RS256" if isinstance(key, RSAKey) else "ES256",
                       "kid": key.kid}, claims, key)


def _client(key):
    pub = key.as_dict(private=False)
    pub["kid"] = key.kid
    return make_client("pkj", auth_method="private_key_jwt", jwks={"keys": [pub]})


def _post(client, rp, assertion, code, verifier):
    return client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})


def test_private_key_jwt_authenticates_and_jti_cannot_be_replayed(client, person):
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    rp = _client(key)
    code, _, verifier = get_code(client, rp)
    assertion = _assertion(key)
    assert _post(client, rp, assertion, code, verifier).status_code == 200
    code, _, verifier = get_code(client, rp)
    replay = _post(client, rp, assertion, code, verifier)
    # RFC 6749 §5.2: 401 is required only for Authorization-header credentials.
    assert replay.status_code in (400, 401)
    assert replay.get_json()["error"] == "invalid_client"


def test_private_key_jwt_wrong_key_audience_or_expiry(client, person):
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    rp = _client(key)
    other = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    for bad in (_assertion(other), _assertion(key, aud="https://elsewhere.example/token"),
                _assertion(key, exp_in=-120)):
        code, _, verifier = get_code(client, rp)
        resp = _post(client, rp, bad, code, verifier)
        assert resp.status_code in (400, 401) and resp.get_json()["error"] == "invalid_client"


def test_private_key_jwt_client_cannot_fall_back_to_a_secret(client, person):
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    rp = _client(key)
    rp.secret = "guess"
    code, _, verifier = get_code(client, rp)
    resp = exchange(client, rp, code, verifier)
    assert resp.status_code == 401
