"""RFC 8705 §5: ``mtls_endpoint_aliases`` — the endpoints at the address where the TLS
terminator asks relying parties for certificates (MTLS_ENDPOINT_BASE), served by the
same provider through the same trusted terminator."""

from __future__ import annotations

import datetime
import secrets
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
from tests.helpers import REDIRECT, follow_login, pkce_pair, query

from .fapi_helpers import (
    ASSERTION_TYPE,
    ISSUER,
    code_via_par,
    dpop_proof,
    keyed_client,
    new_key,
    verifier_for,
)

ALIAS = "https://mtls.localhost"


@pytest.fixture
def aliased(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "TRUSTED_PROXIES", 1)
    monkeypatch.setitem(ctx.config, "MTLS_ENDPOINT_BASE", ALIAS)
    return ctx


def _certificate(cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert, key


def _header(cert) -> dict:
    return {"X-SSL-Client-Cert": quote(cert.public_bytes(serialization.Encoding.PEM).decode())}


def _mtls_client(client_id: str):
    cert, key = _certificate(client_id)
    jwk = ECKey.import_key(key.public_key()).as_dict(private=False)
    register_client(client_id=client_id, name="mtls", auth_method="self_signed_tls_client_auth",
                    redirect_uris=[REDIRECT],
                    grant_types=["authorization_code", "client_credentials"],
                    jwks={"keys": [jwk]})
    return cert


def test_discovery_lists_the_aliases_only_when_mutual_tls_is_on(ctx, client, monkeypatch):
    assert "mtls_endpoint_aliases" not in client.get("/.well-known/openid-configuration").json
    # An alias address without a trusted terminator would be a promise we cannot keep.
    monkeypatch.setitem(ctx.config, "MTLS_ENDPOINT_BASE", ALIAS)
    assert "mtls_endpoint_aliases" not in client.get("/.well-known/openid-configuration").json
    monkeypatch.setitem(ctx.config, "TRUSTED_PROXIES", 1)
    doc = client.get("/.well-known/openid-configuration").json
    aliases = doc["mtls_endpoint_aliases"]
    for name in ("token_endpoint", "introspection_endpoint", "revocation_endpoint",
                 "userinfo_endpoint", "pushed_authorization_request_endpoint"):
        assert aliases[name] == doc[name].replace(ISSUER, ALIAS), name
    # Exactly the endpoints this provider serves a client at, each as in the document.
    assert set(aliases) <= {"token_endpoint", "introspection_endpoint", "revocation_endpoint",
                            "userinfo_endpoint", "pushed_authorization_request_endpoint",
                            "backchannel_authentication_endpoint",
                            "device_authorization_endpoint"}
    assert all(name in doc and aliases[name] == doc[name].replace(ISSUER, ALIAS)
               for name in aliases)
    assert not any(v.startswith(ISSUER) for v in aliases.values())


def test_the_aliases_work_with_the_certificate(aliased, client, person):
    cert = _mtls_client("alias-rp")
    other, _ = _certificate("someone-else")
    # PAR at the alias, authenticated by the certificate.
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": "alias-rp", "redirect_uri": REDIRECT,
              "scope": "openid profile", "state": "s1", "code_challenge": challenge,
              "code_challenge_method": "S256"}
    pushed = client.post("/par", base_url=ALIAS, data=params, headers=_header(cert))
    assert pushed.status_code == 201, pushed.get_json()
    resp = follow_login(client, client.get("/authorize", query_string={
        "client_id": "alias-rp", "request_uri": pushed.get_json()["request_uri"]}))
    code = query(resp.headers["Location"])["code"]
    # The token endpoint's alias: a certificate-bound token.
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_id": "alias-rp"}
    tok = client.post("/token", base_url=ALIAS, data=data, headers=_header(cert))
    assert tok.status_code == 200, tok.get_json()
    at = tok.get_json()["access_token"]
    # userinfo's alias: with the certificate, not with another one.
    auth = {"Authorization": f"Bearer {at}"}
    ok = client.get("/userinfo", base_url=ALIAS, headers={**auth, **_header(cert)})
    assert ok.status_code == 200 and ok.get_json()["name"] == "李四"
    refused = client.get("/userinfo", base_url=ALIAS, headers={**auth, **_header(other)})
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_token"
    # Introspection and revocation at their aliases.
    seen = client.post("/introspect", base_url=ALIAS, headers=_header(cert),
                       data={"token": at, "client_id": "alias-rp"}).get_json()
    assert seen["active"] is True and "x5t#S256" in seen["cnf"]
    gone = client.post("/revoke", base_url=ALIAS, headers=_header(cert),
                       data={"token": at, "client_id": "alias-rp"})
    assert gone.status_code == 200
    assert client.get("/userinfo", base_url=ALIAS,
                      headers={**auth, **_header(cert)}).status_code == 401


def test_dpop_and_client_assertions_name_the_alias_address(aliased, client, person):
    """A request that came to the alias host is answered as at the alias address: the
    proof's htu and the assertion's aud may name it; a proof for the issuer's address
    is not for this request."""
    rp = keyed_client("alias-fapi", profile="fapi2")
    key = new_key("dpop")
    code, state = code_via_par(client, rp)
    now = int(time.time())
    assertion = jwt.encode({"alg": "ES256", "kid": rp.key.kid}, {
        "iss": rp.client_id, "sub": rp.client_id, "aud": ALIAS + "/token", "iat": now,
        "exp": now + 60, "jti": secrets.token_urlsafe(8)}, rp.key)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier_for(state), "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}
    first = client.post("/token", base_url=ALIAS, data=data,
                        headers={"DPoP": dpop_proof(key, "POST", ALIAS + "/token")})
    assert first.get_json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    wrong = client.post("/token", base_url=ALIAS, data=data, headers={
        "DPoP": dpop_proof(key, "POST", ISSUER + "/token", nonce=nonce)})
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_dpop_proof"
    good = client.post("/token", base_url=ALIAS, data=data, headers={
        "DPoP": dpop_proof(key, "POST", ALIAS + "/token", nonce=nonce)})
    assert good.status_code == 200, good.get_json()
    assert good.get_json()["token_type"] == "DPoP"


def test_settings_check_the_alias_address():
    from idp import settings

    base = {**{k: getattr(settings.default, k) for k in dir(settings.default) if k.isupper()},
            "ISSUER": "https://id.example.gov.cn", "KEK": None, "TRUSTED_PROXIES": 1}
    for bad in ("http://mtls.example", "https://mtls.example/path", "mtls.example",
                "https://mtls.example:99999"):
        with pytest.raises(settings.ConfigError, match="IDP_MTLS_ENDPOINT_BASE=.*https"):
            settings.validate({**base, "MTLS_ENDPOINT_BASE": bad})
    with pytest.raises(settings.ConfigError, match="TRUSTED_PROXIES > 0"):
        settings.validate({**base, "TRUSTED_PROXIES": 0,
                           "MTLS_ENDPOINT_BASE": "https://mtls.example"})
    settings.validate({**base, "MTLS_ENDPOINT_BASE": "https://mtls.example:8443"})
