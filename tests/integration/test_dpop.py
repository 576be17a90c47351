"""DPoP (RFC 9449) and certificate-bound tokens (RFC 8705): tokens usable only by the
holder of the key or certificate they were issued to."""

from __future__ import annotations

import datetime
import time
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.clients import register_client

from .fapi_helpers import (
    ISSUER,
    code_via_par,
    dpop_proof,
    exchange_code,
    keyed_client,
    new_key,
    nonce,
    token_request,
)


@pytest.fixture
def bound(client, person):
    """A DPoP-bound token response of a FAPI 2.0 client, and the proof key."""
    rp = keyed_client("fapi", profile="fapi2")
    key = new_key("dpop")
    code, state = code_via_par(client, rp)
    resp = exchange_code(client, rp, code, state, proof_key=key)
    assert resp.status_code == 200, resp.get_json()
    return rp, key, resp.get_json()


def _userinfo(client, token, key=None, scheme="DPoP", **proof):
    headers = {"Authorization": f"{scheme} {token}"}
    if key is not None:
        # The resource demands our nonce too (DPOP_REQUIRE_NONCE_AT_RESOURCE).
        proof.setdefault("nonce", nonce(client))
        headers["DPoP"] = dpop_proof(key, proof.pop("method", "GET"),
                                     proof.pop("url", ISSUER + "/userinfo"),
                                     access_token=proof.pop("ath_token", token), **proof)
    return client.get("/userinfo", headers=headers)


def test_token_is_bound_to_the_proof_key(client, bound):
    rp, key, tok = bound
    assert tok["token_type"] == "DPoP"
    claims = jwt.decode(tok["access_token"], _provider_keys(),
                        algorithms=_provider_algs()).claims
    assert claims["cnf"] == {"jkt": key.thumbprint()}
    ok = _userinfo(client, tok["access_token"], key)
    assert ok.status_code == 200 and ok.get_json()["sub"]


def _provider_keys():
    from idp.oidc.tokens import keyring

    return keyring().public_keys()


def _provider_algs():
    from idp.oidc.tokens import keyring

    return keyring().algorithms()


def test_bound_token_as_bearer_or_with_another_key_is_refused(client, bound):
    rp, key, tok = bound
    at = tok["access_token"]
    as_bearer = _userinfo(client, at, scheme="Bearer")
    assert as_bearer.status_code == 401
    assert as_bearer.get_json()["error"] == "invalid_token"
    assert as_bearer.headers["WWW-Authenticate"].startswith("DPoP ")
    other_key = _userinfo(client, at, new_key())
    assert other_key.status_code == 401
    assert other_key.get_json()["error"] == "invalid_dpop_proof"
    no_proof = _userinfo(client, at)
    assert no_proof.get_json()["error"] == "invalid_dpop_proof"
    wrong_ath = _userinfo(client, at, key, ath_token="something-else")
    assert wrong_ath.get_json()["error"] == "invalid_dpop_proof"


def test_proof_replay_wrong_htm_htu_stale_iat_are_refused(client, bound):
    rp, key, tok = bound
    at = tok["access_token"]
    proof = dpop_proof(key, "GET", ISSUER + "/userinfo", access_token=at, nonce=nonce(client))
    headers = {"Authorization": f"DPoP {at}", "DPoP": proof}
    assert client.get("/userinfo", headers=headers).status_code == 200
    replay = client.get("/userinfo", headers=headers)
    assert replay.status_code == 401 and "replay" in replay.get_json()["error_description"]
    for why, kw in {"htm": {"method": "POST"}, "htu": {"url": ISSUER + "/token"},
                    "htu host": {"url": "https://evil.example/userinfo"},
                    "stale iat": {"iat": int(time.time()) - 600},
                    "future iat": {"iat": int(time.time()) + 600}}.items():
        resp = _userinfo(client, at, key, **kw)
        assert resp.status_code == 401, why
        assert resp.get_json()["error"] == "invalid_dpop_proof", why


def test_resource_demands_a_nonce_and_checks_ath(ctx, client, bound, monkeypatch):
    """RFC 9449 §9: a proof without our nonce at userinfo gets 401 with
    WWW-Authenticate: DPoP error="use_dpop_nonce" and a DPoP-Nonce header; the retry
    with it works. The refused proof was not "used" (its jti may come again)."""
    rp, key, tok = bound
    at = tok["access_token"]
    first = _userinfo(client, at, key, nonce=None, jti="same-jti")
    assert first.status_code == 401 and first.get_json()["error"] == "use_dpop_nonce"
    challenge = first.headers["WWW-Authenticate"]
    assert challenge.startswith('DPoP error="use_dpop_nonce"') and 'algs="ES256' in challenge
    given = first.headers["DPoP-Nonce"]
    forged = _userinfo(client, at, key, nonce="1.forged", jti="same-jti")
    assert forged.status_code == 401 and forged.get_json()["error"] == "use_dpop_nonce"
    again = _userinfo(client, at, key, nonce=given, jti="same-jti")
    assert again.status_code == 200, again.get_json()
    # ath is checked: missing, or the hash of another token.
    for other in (None, "another-token"):  # None: the proof has no ath at all
        resp = _userinfo(client, at, key, nonce=given, ath_token=other)
        assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_dpop_proof"
        assert "ath" in resp.get_json()["error_description"]
        assert 'algs="' in resp.headers["WWW-Authenticate"]
    # Switched off, a proof without a nonce is enough at the resource.
    monkeypatch.setitem(ctx.config, "DPOP_REQUIRE_NONCE_AT_RESOURCE", False)
    assert _userinfo(client, at, key, nonce=None).status_code == 200


def test_a_proof_with_the_previous_nonce_gets_the_current_one(ctx, client, bound, monkeypatch):
    """RFC 9449 §8.2: the nonce before is still accepted, and the answer hands out the
    current one (so the client's next proof needs no 401 first); a current one gets none."""
    from idp.oidc import dpop

    rp, key, tok = bound
    at = tok["access_token"]
    monkeypatch.setattr(dpop, "_slot", lambda: 1000)  # a fixed clock for the nonces
    previous, current = dpop._nonce_for(999), dpop._nonce_for(1000)
    older = _userinfo(client, at, key, nonce=previous)
    assert older.status_code == 200 and older.headers["DPoP-Nonce"] == current
    fresh = _userinfo(client, at, key, nonce=current)
    assert fresh.status_code == 200 and "DPoP-Nonce" not in fresh.headers
    gone = _userinfo(client, at, key, nonce=dpop._nonce_for(998))
    assert gone.status_code == 401 and gone.headers["DPoP-Nonce"] == current


def test_errors_under_the_dpop_scheme_carry_its_challenge(client, bound):
    rp, key, tok = bound
    bad = client.get("/userinfo", headers={"Authorization": "DPoP not-a-token",
                                           "DPoP": dpop_proof(key, "GET", ISSUER + "/userinfo")})
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_token"
    assert bad.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')
    assert 'algs="' in bad.headers["WWW-Authenticate"]


def test_malformed_proofs_at_the_token_endpoint(client, person):
    rp = keyed_client("fapi", profile="fapi2")
    key = new_key()
    fresh = nonce(client)
    hmac_key_proof = dpop_proof(key, "POST", ISSUER + "/token", nonce=fresh, typ="JWT")
    code, state = code_via_par(client, rp)
    for bad in ("not-a-jwt", "a.b.c", hmac_key_proof):
        resp = exchange_code(client, rp, code, state, proof=bad)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_dpop_proof"
    # Two DPoP headers: refused, whichever is good.
    good = dpop_proof(key, "POST", ISSUER + "/token", nonce=fresh)
    resp = client.post("/token", data={"grant_type": "authorization_code"},
                       headers=[("DPoP", good), ("DPoP", good)])
    assert resp.get_json()["error"] == "invalid_dpop_proof"


def test_nonce_is_demanded_and_a_stale_one_refused(client, person):
    rp = keyed_client("fapi", profile="fapi2")
    key = new_key()
    code, state = code_via_par(client, rp)
    first = exchange_code(client, rp, code, state,
                          proof=dpop_proof(key, "POST", ISSUER + "/token"))
    assert first.status_code == 400 and first.get_json()["error"] == "use_dpop_nonce"
    assert first.headers["DPoP-Nonce"]
    forged = exchange_code(client, rp, code, state,
                           proof=dpop_proof(key, "POST", ISSUER + "/token", nonce="1.abc"))
    assert forged.get_json()["error"] == "use_dpop_nonce"
    # The code was not spent by the refused proofs: the retry with the nonce works.
    ok = exchange_code(client, rp, code, state,
                       proof=dpop_proof(key, "POST", ISSUER + "/token",
                                        nonce=first.headers["DPoP-Nonce"]))
    assert ok.status_code == 200, ok.get_json()


def test_refresh_token_is_bound_too(client, bound):
    rp, key, tok = bound
    refresh = {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
    stolen = token_request(client, rp, refresh, proof_key=new_key())
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    unproved = token_request(client, rp, refresh)
    assert unproved.status_code == 400
    # The refused attempts did not rotate (or kill) the holder's refresh token.
    ok = token_request(client, rp, refresh, proof_key=key)
    assert ok.status_code == 200, ok.get_json()
    new = ok.get_json()
    assert new["token_type"] == "DPoP" and new["refresh_token"] != tok["refresh_token"]
    assert _userinfo(client, new["access_token"], key).status_code == 200


def test_introspection_returns_the_binding(client, bound):
    import base64

    rp, key, tok = bound
    secret = "introspector-secret-0123456789"
    register_client(client_id="rs", name="resource server", secret=secret,
                    auth_method="client_secret_basic", redirect_uris=[],
                    grant_types=["client_credentials"])
    basic = {"Authorization": "Basic " + base64.b64encode(f"rs:{secret}".encode()).decode()}
    at = client.post("/introspect", data={"token": tok["access_token"]}, headers=basic)
    assert at.get_json()["active"] is True
    assert at.get_json()["cnf"] == {"jkt": key.thumbprint()}
    assert at.get_json()["token_type"] == "DPoP"
    rt = client.post("/introspect", data={"token": tok["refresh_token"],
                                          "token_type_hint": "refresh_token"}, headers=basic)
    assert rt.get_json()["cnf"] == {"jkt": key.thumbprint()}


def test_code_pushed_with_a_dpop_key_is_exchanged_only_with_it(client, person):
    """RFC 9449 §10: a proof at the PAR endpoint binds the authorization code."""
    from tests.helpers import follow_login, query

    from .fapi_helpers import auth_params, authorize_with, push

    rp = keyed_client("fapi", profile="fapi2")
    key = new_key()
    params = auth_params(rp)
    first = push(client, rp, params, headers={"DPoP": dpop_proof(key, "POST", ISSUER + "/par")})
    assert first.get_json()["error"] == "use_dpop_nonce"
    proof = dpop_proof(key, "POST", ISSUER + "/par", nonce=first.headers["DPoP-Nonce"])
    pushed = push(client, rp, params, headers={"DPoP": proof})
    assert pushed.status_code == 201, pushed.get_json()
    resp = follow_login(client, authorize_with(client, rp,
                                               request_uri=pushed.get_json()["request_uri"]))
    code = query(resp.headers["Location"])["code"]
    other = exchange_code(client, rp, code, params["state"], proof_key=new_key())
    assert other.status_code == 400 and other.get_json()["error"] == "invalid_grant"


# -- mutual TLS (RFC 8705) through the trusted terminator ---------------------------------

def _certificate(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert, key


def _header(cert: x509.Certificate) -> dict:
    return {"X-SSL-Client-Cert": quote(cert.public_bytes(serialization.Encoding.PEM).decode())}


def test_mtls_client_credentials_and_certificate_bound_token(ctx, client, monkeypatch):
    monkeypatch.setitem(ctx.config, "TRUSTED_PROXIES", 1)
    cert, key = _certificate("rs-client")
    jwk = ECKey.import_key(key.public_key()).as_dict(private=False)
    register_client(client_id="mtls-rp", name="mtls", auth_method="self_signed_tls_client_auth",
                    redirect_uris=[], grant_types=["client_credentials"],
                    jwks={"keys": [jwk]})
    data = {"grant_type": "client_credentials", "client_id": "mtls-rp"}
    resp = client.post("/token", data=data, headers=_header(cert))
    assert resp.status_code == 200, resp.get_json()
    at = resp.get_json()["access_token"]
    claims = jwt.decode(at, _provider_keys(), algorithms=_provider_algs()).claims
    from idp.oidc.mtls import thumbprint

    assert claims["cnf"] == {"x5t#S256": thumbprint(cert)}
    other, _ = _certificate("rs-client")
    assert client.post("/token", data=data, headers=_header(other)).status_code in (400, 401)
    assert client.post("/token", data=data).status_code in (400, 401)
    # The bound token at a resource over another certificate (or none): refused.
    from idp.oidc import bearer

    with ctx.test_request_context("/userinfo", headers={"Authorization": f"Bearer {at}",
                                                        **_header(other)}):
        with pytest.raises(bearer.BearerError) as err:
            bearer.access_token()
        assert err.value.error == "invalid_token"
    with ctx.test_request_context("/userinfo", headers={"Authorization": f"Bearer {at}",
                                                        **_header(cert)}):
        assert bearer.access_token().claims["cnf"]
    # Without a trusted proxy the header means nothing: no client authentication at all.
    monkeypatch.setitem(ctx.config, "TRUSTED_PROXIES", 0)
    assert client.post("/token", data=data, headers=_header(cert)).status_code in (400, 401)


def test_tls_client_auth_by_subject_dn(ctx, client, monkeypatch):
    monkeypatch.setitem(ctx.config, "TRUSTED_PROXIES", 1)
    cert, _ = _certificate("bank-rp")
    register_client(client_id="dn-rp", name="dn", auth_method="tls_client_auth",
                    redirect_uris=[], grant_types=["client_credentials"],
                    security={"tls_client_auth_subject_dn": "CN=bank-rp"})
    data = {"grant_type": "client_credentials", "client_id": "dn-rp"}
    assert client.post("/token", data=data, headers=_header(cert)).status_code == 200
    impostor, _ = _certificate("someone-else")
    assert client.post("/token", data=data, headers=_header(impostor)).status_code in (400, 401)


def test_unbound_bearer_tokens_still_work_unchanged(client, person):
    from tests.helpers import make_client, tokens_for

    tok = tokens_for(client, make_client("plain"))
    assert tok["token_type"] == "Bearer"
    resp = client.get("/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert resp.status_code == 200
    # An unbound token under the DPoP scheme is not silently accepted either.
    key = new_key()
    resp = _userinfo(client, tok["access_token"], key)
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_token"
