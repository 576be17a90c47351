"""Building blocks for the PAR / request object / DPoP / FAPI tests: a client with its
own key pair, client assertions, request objects and DPoP proofs made as a relying
party would make them (joserfc; nothing of the provider's code)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import ECKey

from idp.clients import register_client
from tests.helpers import REDIRECT, follow_login, pkce_pair, query

ISSUER = "http://localhost"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class KeyedClient:
    """A private_key_jwt client and its signing key."""

    def __init__(self, client_id: str, key: ECKey):
        self.client_id, self.key = client_id, key
        self.redirect_uri = REDIRECT

    def assertion(self, aud: str = ISSUER) -> dict:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": aud, "iat": now,
                  "exp": now + 60, "jti": secrets.token_urlsafe(8)}
        token = jwt.encode({"alg": "ES256", "kid": self.key.kid}, claims, self.key)
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token}

    def request_object(self, key: ECKey | None = None, alg: str = "ES256", **over) -> str:
        now = int(time.time())
        claims = {"iss": self.client_id, "aud": ISSUER, "iat": now, "exp": now + 120,
                  "client_id": self.client_id, **auth_params(self), **over}
        claims = {k: v for k, v in claims.items() if v is not None}
        key = key or self.key
        return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


def new_key(kid: str = "k1") -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid})


def public_jwks(key: ECKey) -> dict:
    pub = key.as_dict(private=False)
    pub["kid"] = key.kid
    return {"keys": [pub]}


def keyed_client(client_id: str = "fapi-rp", *, profile: str | None = None,
                 **security) -> KeyedClient:
    key = new_key()
    register_client(client_id=client_id, name=f"测试 {client_id}", auth_method="private_key_jwt",
                    redirect_uris=[REDIRECT], jwks=public_jwks(key),
                    security={"profile": profile, **security})
    return KeyedClient(client_id, key)


_VERIFIERS: dict[str, str] = {}


def auth_params(rp: KeyedClient, **over) -> dict:
    """Authorization request parameters with a fresh PKCE pair (verifier kept by state)."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    _VERIFIERS[state] = verifier
    params = {"response_type": "code", "client_id": rp.client_id,
              "redirect_uri": rp.redirect_uri, "scope": "openid profile", "state": state,
              "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
              "code_challenge_method": "S256", **over}
    return {k: v for k, v in params.items() if v is not None}


def verifier_for(state: str) -> str:
    return _VERIFIERS[state]


def push(client, rp: KeyedClient, params: dict | None = None, *, headers=None, auth=True):
    data = dict(params if params is not None else auth_params(rp))
    if auth:
        data.update(rp.assertion())
    data.setdefault("client_id", rp.client_id)
    return client.post("/par", data=data, headers=headers or {})


def authorize_with(client, rp: KeyedClient, **params):
    return client.get("/authorize?" + urlencode({"client_id": rp.client_id, **params}))


def code_via_par(client, rp: KeyedClient, params: dict | None = None):
    """Push, sign in, consent; the (code, state) the client receives."""
    params = params or auth_params(rp)
    pushed = push(client, rp, params)
    assert pushed.status_code == 201, pushed.get_json()
    resp = follow_login(client, authorize_with(client, rp,
                                               request_uri=pushed.get_json()["request_uri"]))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:400]
    q = query(resp.headers["Location"])
    assert "code" in q, q
    return q["code"], params["state"]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def dpop_proof(key: ECKey, method: str, url: str, *, nonce: str | None = None,
               access_token: str | None = None, iat: int | None = None,
               jti: str | None = None, typ: str = "dpop+jwt", alg: str = "ES256") -> str:
    claims = {"jti": jti or secrets.token_urlsafe(12), "htm": method, "htu": url,
              "iat": int(time.time()) if iat is None else iat}
    if nonce:
        claims["nonce"] = nonce
    if access_token:
        claims["ath"] = b64(hashlib.sha256(access_token.encode()).digest())
    header = {"typ": typ, "alg": alg, "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key)


def nonce(client) -> str:
    """A current DPoP nonce, as a client learns it: from a refused first try."""
    resp = client.post("/token", data={"grant_type": "authorization_code"},
                       headers={"DPoP": dpop_proof(new_key(), "POST", ISSUER + "/token")})
    assert resp.get_json()["error"] == "use_dpop_nonce"
    return resp.headers["DPoP-Nonce"]


def token_request(client, rp: KeyedClient, data: dict, *, proof_key: ECKey | None = None,
                  dpop_nonce: str | None = None, proof: str | None = None):
    headers = {}
    if proof is not None:
        headers["DPoP"] = proof
    elif proof_key is not None:
        headers["DPoP"] = dpop_proof(proof_key, "POST", ISSUER + "/token",
                                     nonce=dpop_nonce or nonce(client))
    return client.post("/token", data={**data, **rp.assertion()}, headers=headers)


def exchange_code(client, rp: KeyedClient, code: str, state: str, **kw):
    return token_request(client, rp, {"grant_type": "authorization_code", "code": code,
                                      "redirect_uri": rp.redirect_uri,
                                      "code_verifier": verifier_for(state)}, **kw)
