"""Mutual-TLS client authentication and certificate-bound tokens (RFC 8705), through
the TLS terminator in front of us.

The terminator runs the TLS handshake and forwards the client's certificate in
CERT_HEADER, exactly as for certificate sign-in (:mod:`idp.authn.cert_login`), and the
same trust rule applies: the header is read only when TRUSTED_PROXIES > 0, i.e. the
provider is reachable only through proxies that overwrite it; a header that arrives
twice is refused. Here the certificate identifies a relying party, not a citizen:

- ``tls_client_auth`` (§2.1): the certificate's subject DN (RFC 4514 string) equals the
  registered ``tls_client_auth_subject_dn``; the terminator must validate the chain
  against the CAs that issue relying parties' certificates.
- ``self_signed_tls_client_auth`` (§2.2): the certificate is one of the client's
  registered keys (the public key appears in its JWKS).

Tokens issued over such a connection carry ``cnf.x5t#S256``, the certificate's SHA-256
thumbprint (§3), and are accepted only over a connection with that same certificate.

Where the terminator asks for client certificates only at another address
(MTLS_ENDPOINT_BASE, e.g. a host of its own so browsers on the main one are never asked
for a certificate), discovery lists the endpoints there as ``mtls_endpoint_aliases``
(§5): the same provider behind the same terminator, the same paths. A request that came
to that host (its ``Host``) is answered as at that address: a DPoP proof's ``htu`` and
a client assertion's ``aud`` name the alias.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidClientError
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import current_app, request

from ..authn import cert_verify

_UNSET = object()


def _trusted() -> bool:
    return int(current_app.config.get("TRUSTED_PROXIES") or 0) > 0


def client_certificate() -> x509.Certificate | None:
    """The leaf certificate the terminator forwarded, None when there is none (or it
    cannot be believed). Parsed once per request."""
    cached = request.environ.get("idp.mtls_cert", _UNSET)
    if cached is not _UNSET:
        return cached
    cert = None
    if _trusted():
        raw = request.headers.get(current_app.config.get("CERT_HEADER") or "X-SSL-Client-Cert",
                                  "")
        if raw.strip():
            try:
                cert = cert_verify.parse_header(raw)[0]
            except (ValueError, UnicodeError):
                cert = None
    request.environ["idp.mtls_cert"] = cert
    return cert


# The endpoints a client may use with mutual TLS (RFC 8705 §5), where registered.
ALIASED_ENDPOINTS = ("token_endpoint", "revocation_endpoint", "introspection_endpoint",
                     "userinfo_endpoint", "pushed_authorization_request_endpoint",
                     "backchannel_authentication_endpoint", "device_authorization_endpoint")


def alias_base() -> str | None:
    """MTLS_ENDPOINT_BASE, when mutual TLS is on (the certificate header is believed)."""
    base = current_app.config.get("MTLS_ENDPOINT_BASE")
    return base.rstrip("/") if base and _trusted() else None


def endpoint_aliases(doc: dict) -> dict[str, str]:
    """``mtls_endpoint_aliases`` for the discovery document ``doc``: its endpoints among
    ALIASED_ENDPOINTS at the alias address; empty without one."""
    base = alias_base()
    if not base:
        return {}
    own = current_app.config["ISSUER"].rstrip("/")
    return {name: base + doc[name][len(own):] for name in ALIASED_ENDPOINTS
            if isinstance(doc.get(name), str) and doc[name].startswith(own + "/")}


def public_base() -> str:
    """The address this request was made to: the alias one when it came to that host,
    else the issuer's."""
    base = alias_base()
    if base and request.host.lower() == (urlsplit(base).netloc or "").lower():
        return base
    return current_app.config["ISSUER"].rstrip("/")


def thumbprint(cert: x509.Certificate) -> str:
    der = cert.public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def presented_thumbprint() -> str | None:
    cert = client_certificate()
    return thumbprint(cert) if cert is not None else None


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


class _MTLSAuth:
    CLIENT_AUTH_METHOD = ""

    def __call__(self, query_client, request):
        client_id = request.payload.data.get("client_id")
        cert = client_certificate()
        if not client_id or cert is None:
            return None
        client = query_client(client_id)
        if client is None:
            raise InvalidClientError(description="The client does not exist on this server.")
        if client.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD:
            return None
        if not self.matches(client, cert):
            raise InvalidClientError(
                description="The TLS client certificate is not the client's registered one.")
        return client

    def matches(self, client, cert) -> bool:
        raise NotImplementedError


class TLSClientAuth(_MTLSAuth):
    CLIENT_AUTH_METHOD = "tls_client_auth"

    def matches(self, client, cert) -> bool:
        want = client.meta("tls_client_auth_subject_dn")
        return bool(want) and cert.subject.rfc4514_string() == want


class SelfSignedTLSClientAuth(_MTLSAuth):
    CLIENT_AUTH_METHOD = "self_signed_tls_client_auth"

    def matches(self, client, cert) -> bool:
        from .client_keys import ClientKeysError, key_set

        try:
            keys = key_set(client)
        except ClientKeysError:
            return False
        spki = _spki(cert)
        for key in keys.keys:
            try:
                if key.as_der(private=False) == spki:
                    return True
            except (ValueError, TypeError, AttributeError):
                continue
        return False
