"""SM2SM3-signed tokens from the running provider, checked with our verifier and with
OpenSSL 3's own SM2 (GM/T 0003, default user ID 1234567812345678)."""

from __future__ import annotations

import base64
import subprocess

from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from idp.crypto import sm2
from idp.crypto.sm3 import half_hash_sm3
from tests.helpers import make_client, tokens_for


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_discovery_and_jwks_publish_sm2(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert "SM2SM3" in doc["id_token_signing_alg_values_supported"]
    assert "SM2SM3" in doc["userinfo_signing_alg_values_supported"]
    sm2_keys = [k for k in client.get("/jwks").get_json()["keys"] if k.get("crv") == "SM2"]
    assert sm2_keys and sm2_keys[0]["kty"] == "EC" and sm2_keys[0]["alg"] == "SM2SM3"
    assert "d" not in sm2_keys[0]


def test_sm2_id_token_verifies_and_at_hash_uses_sm3(client, person):
    rp = make_client("gm", first_party=True, id_token_alg="SM2SM3")
    body = tokens_for(client, rp)
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    tok = jwt.decode(body["id_token"], jwks, algorithms=["SM2SM3"])
    assert tok.header["alg"] == "SM2SM3"
    assert tok.claims["at_hash"] == half_hash_sm3(body["access_token"])
    # The same token does not pass as an ES256 one.
    import pytest
    from joserfc.errors import JoseError

    with pytest.raises(JoseError):
        jwt.decode(body["id_token"], jwks, algorithms=["ES256"])


def test_sm2_id_token_verifies_with_openssl(client, person, tmp_path):
    rp = make_client("gm", first_party=True, id_token_alg="SM2SM3")
    id_token = tokens_for(client, rp)["id_token"]
    header_b64, payload_b64, sig_b64 = id_token.split(".")
    kid = extract_compact(id_token.encode()).headers()["kid"]
    jwk = next(k for k in client.get("/jwks").get_json()["keys"] if k["kid"] == kid)
    assert jwk["crv"] == "SM2"
    pub = sm2.SM2PublicKey(int.from_bytes(_b64d(jwk["x"]), "big"),
                           int.from_bytes(_b64d(jwk["y"]), "big"))
    (tmp_path / "pub.pem").write_bytes(pub.public_bytes("PEM"))
    (tmp_path / "input").write_bytes(f"{header_b64}.{payload_b64}".encode())
    (tmp_path / "sig.der").write_bytes(sm2.signature_to_der(_b64d(sig_b64)))

    def openssl_ok(sig_path):
        return subprocess.run(
            ["openssl", "dgst", "-sm3", "-verify", str(tmp_path / "pub.pem"), "-sigopt",
             "distid:1234567812345678", "-signature", str(sig_path), str(tmp_path / "input")],
            capture_output=True, check=False).returncode == 0

    assert openssl_ok(tmp_path / "sig.der")
    bad = bytearray(_b64d(sig_b64))
    bad[10] ^= 1
    (tmp_path / "bad.der").write_bytes(sm2.signature_to_der(bytes(bad)))
    assert not openssl_ok(tmp_path / "bad.der")


def test_openssl_signed_token_verifies_with_our_verifier(client, tmp_path):
    run = lambda *a: subprocess.run(["openssl", *a], capture_output=True, check=True)  # noqa: E731
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
        "-out", str(tmp_path / "k.pem"))
    key = sm2.load_private_key((tmp_path / "k.pem").read_bytes())
    header = base64.urlsafe_b64encode(b'{"alg":"SM2SM3","kid":"ossl"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(b'{"iss":"openssl"}').rstrip(b"=")
    (tmp_path / "in").write_bytes(header + b"." + payload)
    run("dgst", "-sm3", "-sign", str(tmp_path / "k.pem"), "-sigopt", "distid:1234567812345678",
        "-out", str(tmp_path / "sig.der"), str(tmp_path / "in"))
    raw = sm2.signature_from_der((tmp_path / "sig.der").read_bytes())
    token = (header + b"." + payload + b"." + base64.urlsafe_b64encode(raw).rstrip(b"=")).decode()
    from idp.crypto.jose_sm2 import SM2Key

    pub = SM2Key.import_key(key.public_key().public_bytes("PEM"))
    assert jwt.decode(token, pub, algorithms=["SM2SM3"]).claims == {"iss": "openssl"}


def test_signed_userinfo_and_logout_token_with_sm2(client, person):
    from tests.integration.test_logout import Receiver

    receiver = Receiver()
    try:
        rp = make_client("gm", first_party=True, id_token_alg="SM2SM3", userinfo_alg="SM2SM3",
                         backchannel=receiver.url)
        body = tokens_for(client, rp)
        resp = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
        assert resp.mimetype == "application/jwt"
        jwks = KeySet.import_key_set(client.get("/jwks").get_json())
        claims = jwt.decode(resp.get_data(as_text=True), jwks, algorithms=["SM2SM3"]).claims
        assert claims["aud"] == "gm" and claims["iss"] == "http://localhost"
        client.get("/logout?id_token_hint=" + body["id_token"])
        (token,) = receiver.wait(1)
        logout = jwt.decode(token, jwks, algorithms=["SM2SM3"])
        assert logout.header["alg"] == "SM2SM3" and logout.header["typ"] == "logout+jwt"
    finally:
        receiver.close()


def test_unknown_signing_alg_is_refused_at_registration(ctx):
    import pytest

    from idp.clients import ClientError

    with pytest.raises(ClientError, match="SM2SM3"):
        make_client("x", id_token_alg="HS256")
