"""SM2 keys and the SM2SM3 algorithm inside joserfc (idp.crypto.jose_sm2)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import subprocess
import warnings

import pytest
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    InvalidKeyCurveError,
    KeyParameterError,
    UnsupportedAlgorithmError,
    UnsupportedKeyOperationError,
)
from joserfc.jwk import ECKey, JWKRegistry, KeySet, OctKey, RSAKey, import_key
from joserfc.jws import JWSRegistry

from idp.crypto import sm2
from idp.crypto.jose_sm2 import SM2SM3, SM2AwareECKey, SM2Key, register_sm2
from idp.crypto.sm3 import half_hash_sm3, sm3_digest

N = sm2.N
ALG = ["SM2SM3"]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def with_signature(token: str, signature: bytes) -> str:
    head, payload, _ = token.split(".")
    return f"{head}.{payload}.{b64url(signature)}"


@pytest.fixture(scope="module")
def key() -> SM2Key:
    return SM2Key.generate_key(parameters={"kid": "sm2-1"})


@pytest.fixture(scope="module")
def token(key) -> str:
    return jwt.encode({"alg": "SM2SM3", "kid": key.kid}, {"sub": "110101"}, key, ALG)


@pytest.fixture(scope="module")
def public(key) -> SM2Key:
    return import_key(key.as_dict(private=False))


# --- registration ---


def test_register_sm2_is_idempotent():
    register_sm2()
    register_sm2()
    assert JWKRegistry.key_types["EC"] is SM2AwareECKey
    assert SM2AwareECKey.delegate is ECKey
    assert JWSRegistry.algorithms["SM2SM3"] is SM2SM3
    assert "SM2SM3" not in JWSRegistry.recommended
    assert KeySet.algorithm_keys["SM2SM3"] == ["EC"]


def test_other_key_types_are_unchanged():
    p256 = ECKey.generate_key("P-256")
    assert type(import_key(p256.as_dict(private=True))) is ECKey
    assert type(JWKRegistry.generate_key("EC", "P-256")) is ECKey
    assert type(import_key(p256.as_pem(), "EC")) is ECKey
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert type(import_key(p256.as_pem())) is ECKey  # implicit PEM import
    assert type(import_key(RSAKey.generate_key(2048).as_dict())) is RSAKey
    assert type(JWKRegistry.generate_key("EC", "SM2")) is SM2Key


# --- keys as JWK ---


def test_jwk_shape(key):
    private = key.as_dict(private=True)
    assert private["kty"] == "EC" and private["crv"] == "SM2" and private["kid"] == "sm2-1"
    for member in ("x", "y", "d"):
        assert len(b64url_decode(private[member])) == 32
        assert "=" not in private[member]
    public = key.as_dict(private=False)
    assert "d" not in public
    assert set(public) == {"kty", "crv", "x", "y", "kid"}
    native = key.private_key
    assert int.from_bytes(b64url_decode(private["d"]), "big") == native.private_value()
    assert int.from_bytes(b64url_decode(public["x"]), "big") == native.public_key().x


def test_import_export_round_trip(key):
    again = SM2Key.import_key(key.as_dict(private=True))
    assert again.is_private
    assert again.as_dict(private=True) == key.as_dict(private=True)
    via_registry = import_key(key.as_dict(private=True))
    assert isinstance(via_registry, SM2Key) and via_registry.is_private
    public = import_key(key.as_dict(private=False))
    assert isinstance(public, SM2Key) and not public.is_private
    assert public.as_dict() == key.as_dict(private=False)
    with pytest.raises(ValueError):
        public.as_dict(private=True)


def test_thumbprint_is_rfc7638(key):
    pub = key.as_dict(private=False)
    canonical = json.dumps(
        {"crv": "SM2", "kty": "EC", "x": pub["x"], "y": pub["y"]}, separators=(",", ":")
    )
    assert key.thumbprint() == b64url(hashlib.sha256(canonical.encode()).digest())
    fresh = SM2Key.generate_key(auto_kid=True)
    assert fresh.kid == fresh.thumbprint()


def test_generate_public_only():
    pub = SM2Key.generate_key(private=False)
    assert not pub.is_private and "d" not in pub.as_dict()
    with pytest.raises(InvalidKeyCurveError):
        SM2Key.generate_key("P-256")


def test_pem_import_through_joserfc(key):
    for pem in (key.as_pem(private=False), key.as_pem(private=True), key.as_der(private=True)):
        imported = import_key(pem, "EC")
        assert isinstance(imported, SM2Key)
        assert imported.as_dict(private=False) == {
            k: v for k, v in key.as_dict(private=False).items() if k != "kid"
        }
    encrypted = key.as_pem(private=True, password="pw")
    assert b"ENCRYPTED" in encrypted
    assert SM2Key.import_key(encrypted, password="pw").is_private
    # the registry's EC class finds SM2 inside an encrypted PKCS#8 too (the OID is hidden)
    via_registry = JWKRegistry.key_types["EC"].import_key(encrypted, password="pw")
    assert isinstance(via_registry, SM2Key) and via_registry.is_private
    with pytest.raises(KeyParameterError):
        SM2Key.import_key(encrypted, password="wrong")


def test_invalid_jwks_refused(key):
    good = key.as_dict(private=True)
    other = SM2Key.generate_key().as_dict(private=True)
    y_plus_one = (int.from_bytes(b64url_decode(good["y"]), "big") ^ 1).to_bytes(32, "big")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    non_canonical_last = alphabet[alphabet.index(good["x"][-1]) | 1]
    cases = [
        {k: v for k, v in good.items() if k != "d"} | {"y": b64url(y_plus_one)},  # off curve
        dict(good, x=good["x"][:-2]),  # short coordinate
        dict(good, x=good["x"] + "="),  # padded
        dict(good, x="!" + good["x"][1:]),  # not base64url
        dict(good, x="+" + good["x"][1:]),  # plain base64 alphabet
        dict(good, x=good["x"][:-1] + non_canonical_last),  # non-zero unused bits
        dict(good, x=12345),
        dict(good, d=b64url((N - 1).to_bytes(32, "big"))),  # d out of range
        dict(good, d=other["d"]),  # d does not match x, y
        {k: v for k, v in good.items() if k != "y"},  # missing y
    ]
    for case in cases:
        with pytest.raises(KeyParameterError):
            import_key(case)
    with pytest.raises(InvalidKeyCurveError):
        SM2Key.import_key(dict(good, crv="P-256"))


# --- signing and verifying through joserfc ---


def test_jwt_round_trip(key, token, public):
    header, payload, signature = token.split(".")
    assert json.loads(b64url_decode(header)) == {"typ": "JWT", "alg": "SM2SM3", "kid": "sm2-1"}
    assert len(b64url_decode(signature)) == 64
    decoded = jwt.decode(token, public, ALG)
    assert decoded.claims == {"sub": "110101"}
    assert decoded.header["alg"] == "SM2SM3"
    assert jwt.decode(token, key, ALG).claims == {"sub": "110101"}


def test_signature_is_sm2_over_the_signing_input(key, token):
    head, payload, signature = token.split(".")
    native = key.public_key
    assert native.verify(b64url_decode(signature), f"{head}.{payload}".encode())


def test_not_accepted_unless_listed(token, public):
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.decode(token, public)
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.decode(token, public, ["ES256"])


def test_key_and_algorithm_must_match(key, public):
    p256 = ECKey.generate_key("P-256")
    with pytest.raises(InvalidKeyCurveError):
        jwt.encode({"alg": "ES256"}, {"a": 1}, key, ["ES256"])
    with pytest.raises(InvalidKeyCurveError):
        jwt.encode({"alg": "SM2SM3"}, {"a": 1}, p256, ALG)
    with pytest.raises(UnsupportedKeyOperationError):
        jwt.encode({"alg": "SM2SM3"}, {"a": 1}, public, ALG)
    es_token = jwt.encode({"alg": "ES256"}, {"a": 1}, p256, ["ES256"])
    forged = es_token.replace(es_token.split(".")[0], b64url(b'{"alg":"SM2SM3"}'), 1)
    with pytest.raises(InvalidKeyCurveError):
        jwt.decode(forged, p256, ALG)


def test_two_tokens_with_same_claims_differ(key):
    tokens = {jwt.encode({"alg": "SM2SM3"}, {"sub": "same"}, key, ALG) for _ in range(10)}
    assert len(tokens) == 10


def test_signing_never_uses_python_random(key, public, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the random module must not be used for SM2")

    for name in ("random", "randint", "randrange", "getrandbits", "randbytes", "choice"):
        monkeypatch.setattr(random, name, forbidden)
    for name in ("random", "getrandbits", "randbytes"):
        monkeypatch.setattr(random.Random, name, forbidden)
    fresh = SM2Key.generate_key()
    for i in range(10):
        for signer in (key, fresh):
            token = jwt.encode({"alg": "SM2SM3"}, {"i": i}, signer, ALG)
            assert jwt.decode(token, signer, ALG).claims == {"i": i}


def test_tampered_payload_refused(key, token, public):
    head, _, signature = token.split(".")
    forged = f"{head}.{b64url(json.dumps({'sub': '110102'}).encode())}.{signature}"
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, public, ALG)
    other = SM2Key.generate_key()
    with pytest.raises(BadSignatureError):
        jwt.decode(token, other, ALG)


@pytest.mark.parametrize(
    "signature",
    [
        bytes(64),
        (0).to_bytes(32, "big") + (5).to_bytes(32, "big"),
        (5).to_bytes(32, "big") + (0).to_bytes(32, "big"),
        N.to_bytes(32, "big") + (5).to_bytes(32, "big"),
        (5).to_bytes(32, "big") + N.to_bytes(32, "big"),
        (2**256 - 1).to_bytes(32, "big") * 2,
        (1).to_bytes(32, "big") + (N - 1).to_bytes(32, "big"),
        b"",
        b"\x01" * 63,
        b"\x01" * 65,
    ],
    ids=["zeros", "r=0", "s=0", "r=n", "s=n", "r,s>n", "r+s=n", "empty", "63", "65"],
)
def test_malformed_signatures_raise_bad_signature(token, public, signature):
    with pytest.raises(BadSignatureError):
        jwt.decode(with_signature(token, signature), public, ALG)


def test_wrong_length_cut_from_real_signature(token, public):
    real = b64url_decode(token.split(".")[2])
    for candidate in (real[:63], real + b"\x00", b"\x00" + real, real[1:] + b"\x00"):
        with pytest.raises(BadSignatureError):
            jwt.decode(with_signature(token, candidate), public, ALG)


def test_every_single_bit_flip_raises_bad_signature(token, public):
    real = b64url_decode(token.split(".")[2])
    for bit in range(512):
        flipped = bytearray(real)
        flipped[bit // 8] ^= 0x80 >> (bit % 8)
        with pytest.raises(BadSignatureError):
            jwt.decode(with_signature(token, bytes(flipped)), public, ALG)


def test_garbage_signature_segment(token, public):
    head, payload, _ = token.split(".")
    for segment in ("", "A", "!!!!", "A" * 86 + "=="):
        with pytest.raises(BadSignatureError):
            jws.deserialize_compact(f"{head}.{payload}.{segment}", public, ALG)


# --- JWKS ---


def test_mixed_jwks_imports_and_resolves_by_kid(key):
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    p256 = ECKey.generate_key("P-256", parameters={"kid": "p256-1"})
    private_set = KeySet([rsa, p256, key])
    published = KeySet([rsa, p256, key]).as_dict(private=False)
    assert [k["kty"] for k in published["keys"]] == ["RSA", "EC", "EC"]
    assert [k.get("crv") for k in published["keys"]] == [None, "P-256", "SM2"]
    json.dumps(published)  # serialisable as-is

    public_set = KeySet.import_key_set(json.loads(json.dumps(published)))
    assert [type(k) for k in public_set] == [RSAKey, ECKey, SM2Key]
    assert isinstance(public_set.get_by_kid("sm2-1"), SM2Key)

    for alg, kid in (("RS256", "rsa-1"), ("ES256", "p256-1"), ("SM2SM3", "sm2-1")):
        signed = jwt.encode({"alg": alg, "kid": kid}, {"alg": alg}, private_set, [alg])
        assert jwt.decode(signed, public_set, [alg]).claims == {"alg": alg}
        assert jwt.decode(signed, public_set, ["RS256", "ES256", "SM2SM3"]).header["kid"] == kid

    private_again = KeySet.import_key_set(private_set.as_dict(private=True))
    assert private_again.get_by_kid("sm2-1").is_private


def test_jwks_with_unknown_kty_still_imports_sm2(key):
    data = {"keys": [{"kty": "AKP", "alg": "ML-DSA-44", "pub": "AA"}, key.as_dict()]}
    assert [type(k) for k in KeySet.import_key_set(data)] == [SM2Key]


def test_oct_keys_unaffected():
    assert type(import_key(OctKey.generate_key(256).as_dict(private=True))) is OctKey


# --- at_hash for SM2SM3 ID tokens ---


def test_at_hash_claim(key, public):
    access_token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
    at_hash = half_hash_sm3(access_token)
    assert b64url_decode(at_hash) == sm3_digest(access_token.encode())[:16]
    id_token = jwt.encode(
        {"alg": "SM2SM3", "kid": key.kid}, {"sub": "x", "at_hash": at_hash}, key, ALG
    )
    assert jwt.decode(id_token, public, ALG).claims["at_hash"] == at_hash


# --- interoperability of the JWS with the openssl command line ---

OPENSSL = shutil.which("openssl")
UID = "1234567812345678"


def _openssl_is_3() -> bool:
    if not OPENSSL:
        return False
    out = subprocess.run([OPENSSL, "version"], capture_output=True, text=True, check=False)
    return out.stdout.startswith("OpenSSL 3")


@pytest.mark.skipif(not _openssl_is_3(), reason="needs the OpenSSL 3 CLI")
def test_jws_interoperates_with_openssl(tmp_path, key, public):
    def run(*args):
        return subprocess.run(
            [OPENSSL, *map(str, args)], capture_output=True, check=False, stdin=subprocess.DEVNULL
        )

    # a JWS signed by openssl, with an openssl-made key, verifies in joserfc
    priv = tmp_path / "k.pem"
    assert run("genpkey", "-algorithm", "SM2", "-out", priv).returncode == 0
    theirs = SM2Key.import_key(priv.read_bytes())
    head = b64url(json.dumps({"alg": "SM2SM3"}).encode())
    body = b64url(json.dumps({"iss": "openssl"}).encode())
    signing_input = tmp_path / "input"
    signing_input.write_bytes(f"{head}.{body}".encode())
    sig = tmp_path / "sig.der"
    signed = run(
        "pkeyutl", "-sign", "-inkey", priv, "-rawin", "-digest", "sm3",
        "-pkeyopt", f"distid:{UID}", "-in", signing_input, "-out", sig,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    compact = f"{head}.{body}.{b64url(sm2.signature_from_der(sig.read_bytes()))}"
    their_public = import_key(theirs.as_dict(private=False))
    assert jwt.decode(compact, their_public, ALG).claims == {"iss": "openssl"}

    # a JWT signed here verifies with openssl, given the public key as PEM
    token = jwt.encode({"alg": "SM2SM3"}, {"iss": "idp"}, key, ALG)
    head, body, signature = token.split(".")
    signing_input.write_bytes(f"{head}.{body}".encode())
    sig.write_bytes(sm2.signature_to_der(b64url_decode(signature)))
    pub_pem = tmp_path / "pub.pem"
    pub_pem.write_bytes(public.as_pem())
    verified = run(
        "pkeyutl", "-verify", "-pubin", "-inkey", pub_pem, "-rawin", "-digest", "sm3",
        "-pkeyopt", f"distid:{UID}", "-in", signing_input, "-sigfile", sig,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
