"""DPoP proofs (RFC 9449): tokens bound to a key the client holds.

The client signs a small JWT (the proof) for every request with a key pair of its own
and sends it in the ``DPoP`` header. At ``/token`` (and ``/par``) the proof's key
thumbprint becomes ``cnf.jkt`` of the access token and of the refresh token; afterwards
a token with ``cnf.jkt`` is accepted only with a fresh proof by that same key, so a
copied token alone is worthless.

A proof is checked as §4.3 says: one header, ``typ`` ``dpop+jwt``, an asymmetric
algorithm, a public ``jwk`` in the header that verifies the signature, ``htm``/``htu``
equal to this request's method and URL (without query and fragment), ``iat`` within
DPOP_PROOF_MAX_AGE of our clock, ``jti`` never seen before in that window, ``ath`` the
hash of the access token at a resource, and our ``nonce`` where we demand one.

Nonces (§8) are stateless: an HMAC of the current time slot under the app's secret, so
every worker accepts every other's; the one before is accepted too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import current_app, request
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from ..store import store

DPOP_ALGS = ["ES256", "PS256", "RS256", "EdDSA", "SM2SM3"]
_MAX_PROOF = 8192


class InvalidDPoPProof(OAuth2Error):
    error = "invalid_dpop_proof"
    status_code = 400


class UseDPoPNonce(OAuth2Error):
    error = "use_dpop_nonce"
    status_code = 400
    description = "A DPoP nonce is required; retry with the one in the DPoP-Nonce header."

    def get_headers(self):
        return [*super().get_headers(), ("DPoP-Nonce", current_nonce())]


@dataclass
class Proof:
    jkt: str
    claims: dict[str, Any]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _nonce_for(slot: int) -> str:
    key = hashlib.sha256(b"dpop-nonce\x00" + current_app.secret_key.encode()).digest()
    mac = hmac.new(key, str(slot).encode(), hashlib.sha256).digest()[:16]
    return f"{slot:x}.{_b64(mac)}"


def _slot() -> int:
    return int(time.time() // float(current_app.config["DPOP_NONCE_LIFETIME"]))


def current_nonce() -> str:
    return _nonce_for(_slot())


def nonce_valid(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    now = _slot()
    return any(hmac.compare_digest(value, _nonce_for(s)) for s in (now, now - 1))


def nonce_required_at_as() -> bool:
    return bool(current_app.config["DPOP_REQUIRE_NONCE"])


def nonce_required_at_rs() -> bool:
    return bool(current_app.config["DPOP_REQUIRE_NONCE_AT_RESOURCE"])


def access_token_hash(token: str) -> str:
    return _b64(hashlib.sha256(token.encode()).digest())


def _this_url() -> str:
    # The public address: the issuer's scheme and host (the proxy's, not the worker's),
    # or the mutual-TLS alias's when the request came there (RFC 8705 §5).
    from .mtls import public_base

    return public_base() + request.path


def _same_url(htu: Any) -> bool:
    if not isinstance(htu, str) or len(htu) > 2048:
        return False
    try:
        a, b = urlsplit(htu), urlsplit(_this_url())
    except ValueError:
        return False
    # RFC 9449 §4.3 (9): compared without query and fragment, scheme and host case-blind.
    return (a.scheme.lower(), (a.netloc or "").lower(), a.path or "/") == (
        b.scheme.lower(), (b.netloc or "").lower(), b.path or "/")


def _header_value() -> str | None:
    values = request.headers.getlist("DPoP")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidDPoPProof("Exactly one DPoP header is allowed.")
    return values[0].strip()


def verify(raw: str, *, nonce_required: bool, access_token: str | None = None) -> Proof:
    if not raw or len(raw) > _MAX_PROOF or raw.count(".") != 2:
        raise InvalidDPoPProof("The DPoP proof is not a JWS.")
    try:
        header = jws.extract_compact(raw.encode()).protected
    except Exception:  # noqa: BLE001 - joserfc raises several kinds for garbage
        raise InvalidDPoPProof("The DPoP proof is not a JWS.") from None
    if header.get("typ") != "dpop+jwt":
        raise InvalidDPoPProof("The DPoP proof's typ must be dpop+jwt.")
    alg, jwk = header.get("alg"), header.get("jwk")
    if alg not in DPOP_ALGS:
        raise InvalidDPoPProof(f"The DPoP proof must be signed with one of {', '.join(DPOP_ALGS)}.")
    if not isinstance(jwk, dict) or "d" in jwk or jwk.get("kty") not in ("EC", "RSA", "OKP"):
        raise InvalidDPoPProof("The DPoP proof must carry a public key (jwk).")
    try:
        key = JWKRegistry.import_key(jwk)
        claims = jwt.decode(raw, key, algorithms=[alg]).claims
        jkt = key.thumbprint()
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProof("The DPoP proof's signature does not verify.") from None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise InvalidDPoPProof("The DPoP proof needs a jti.")
    if claims.get("htm") != request.method:
        raise InvalidDPoPProof("The DPoP proof's htm is not this request's method.")
    if not _same_url(claims.get("htu")):
        raise InvalidDPoPProof("The DPoP proof's htu is not this request's URL.")
    iat, window = claims.get("iat"), float(current_app.config["DPOP_PROOF_MAX_AGE"])
    if not isinstance(iat, int | float) or isinstance(iat, bool) or abs(time.time() - iat) > window:
        raise InvalidDPoPProof("The DPoP proof's iat is too old or in the future.")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise InvalidDPoPProof("The DPoP proof's ath is not the hash of this access token.")
    if nonce_required and not nonce_valid(claims.get("nonce")):
        raise UseDPoPNonce()
    if nonce_required and claims.get("nonce") != current_nonce():
        # Still accepted (the slot before), but about to expire: the response hands out
        # the current one (§8.2), so the client's next proof needs no 401 first.
        request.environ["idp.dpop_nonce_due"] = True
    # Last: a proof refused above for another reason has not been "used".
    if not store().add(f"dpopjti:{jkt}:{jti}", 1, 2 * window + 5):
        raise InvalidDPoPProof("The DPoP proof was already used (jti replay).")
    return Proof(jkt=jkt, claims=claims)


def fresh_nonce(resp):
    """Add the current nonce to ``resp`` when this request's proof used the one before."""
    if request.environ.get("idp.dpop_nonce_due"):
        resp.headers["DPoP-Nonce"] = current_nonce()
    return resp


def proof_from_request(*, nonce_required: bool, access_token: str | None = None) -> Proof | None:
    """The request's verified proof, None without a DPoP header (raises on a bad one)."""
    raw = _header_value()
    if raw is None:
        return None
    return verify(raw, nonce_required=nonce_required, access_token=access_token)
