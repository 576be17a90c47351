"""Signatures on messages that travel in a URL (HTTP-Redirect binding, SAML Bindings
§3.4.4.1): the signature covers the query parameters exactly as the sender encoded them
(``SAMLRequest=…&RelayState=…&SigAlg=…``), so they are taken from the raw query string,
never decoded and re-encoded (senders differ in percent-encoding case and characters).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

# SHA-1 is refused: a signature it makes can be forged by collision.
_ALGS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", hashes.SHA256),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ec", hashes.SHA256),
}


def _raw_pairs(query: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in query.decode("ascii", "replace").split("&"):
        name, _, value = part.partition("=")
        if name in out:
            out[name] = "\x00duplicate"
        else:
            out[name] = value
    return out


def redirect_signature_ok(query: bytes, message_param: str, certs_b64: list[str]) -> bool:
    """True if the query carries a signature by one of ``certs_b64`` (base64 DER, as
    metadata holds them) over ``message_param`` (SAMLRequest or SAMLResponse)."""
    raw = _raw_pairs(query)
    if any(v == "\x00duplicate" for v in raw.values()):
        return False
    if message_param not in raw or "SigAlg" not in raw or "Signature" not in raw:
        return False
    alg = _ALGS.get(unquote_plus(raw["SigAlg"]))
    if alg is None:
        return False
    signed = f"{message_param}={raw[message_param]}"
    if "RelayState" in raw:
        signed += f"&RelayState={raw['RelayState']}"
    signed += f"&SigAlg={raw['SigAlg']}"
    try:
        signature = base64.b64decode(unquote_plus(raw["Signature"]), validate=False)
    except (binascii.Error, ValueError):
        return False
    kind, digest = alg
    for cert_b64 in certs_b64:
        try:
            key = x509.load_der_x509_certificate(base64.b64decode(cert_b64)).public_key()
            if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed.encode(), padding.PKCS1v15(), digest())
                return True
            if kind == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, signed.encode(), ec.ECDSA(digest()))
                return True
        except (InvalidSignature, ValueError, binascii.Error):
            continue
    return False
