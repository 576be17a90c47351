"""The identity provider's SAML signing and decryption key: an RSA key with a self-signed
certificate, generated on first use and kept like the token-signing keys.

SAML metadata publishes keys as X.509 certificates, not JWKs, and relying parties pin
that certificate, so this key lives beside the JWS keys (same table, SM4-GCM wrapped
under the KEK, bound to its kid) with its own status ``saml``: the JWKS, rotation and
retirement only look at ``active``/``published`` rows and never see it.

xmlsec1, which signs for pysaml2, reads keys from files only. The decrypted key is
written once per worker into a private directory (0700, file 0600) that is removed
when the worker exits; it is never written anywhere else in the clear.
"""

from __future__ import annotations

import atexit
import datetime
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import current_app

from ..extensions import db
from ..models import SigningKey

STATUS = "saml"
ALG = "SAML-RSA"
_lock = threading.Lock()
_files: dict[str, KeyFiles] = {}
_dir: str | None = None


@dataclass(frozen=True)
class KeyFiles:
    kid: str
    key_file: str
    cert_file: str
    cert_pem: str

    @property
    def cert_base64(self) -> str:
        """The certificate as metadata's ``ds:X509Certificate`` carries it."""
        body = self.cert_pem.strip().splitlines()[1:-1]
        return "".join(body)


def _make(issuer: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    host = urlsplit(issuer).hostname or "idp"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "统一身份认证平台")])
    now = datetime.datetime.now(datetime.UTC)
    # SAML relying parties pin the certificate itself (no chain, no expiry checks in
    # most of them); a long validity avoids a silent outage when it would lapse.
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def ensure_key() -> SigningKey:
    """The SAML key row, made on first use. Two workers racing on a fresh database may
    both make one; every worker then uses the oldest, so they agree."""
    row = db.session.scalars(db.select(SigningKey).where(SigningKey.status == STATUS)
                             .order_by(SigningKey.created_at, SigningKey.kid)).first()
    if row is not None:
        return row
    key_pem, cert_pem = _make(current_app.config["ISSUER"])
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    kid = "saml-" + cert.fingerprint(hashes.SHA256()).hex()[:16]
    crypto = current_app.extensions["idp.fieldcrypto"]
    wrapped = crypto.wrap_key(json.dumps({"key": key_pem, "cert": cert_pem}), kid)
    db.session.add(SigningKey(kid=kid, alg=ALG, private_jwk=wrapped, status=STATUS))
    db.session.commit()
    return ensure_key()


def _private_dir() -> str:
    global _dir
    if _dir is None or not os.path.isdir(_dir):
        _dir = tempfile.mkdtemp(prefix="idp-saml-")  # mkdtemp: mode 0700
        atexit.register(shutil.rmtree, _dir, True)
    return _dir


def key_files() -> KeyFiles:
    """The key and certificate as files xmlsec1 can read (one pair per worker)."""
    row = ensure_key()
    with _lock:
        hit = _files.get(row.kid)
        if hit is not None and os.path.exists(hit.key_file):
            return hit
        crypto = current_app.extensions["idp.fieldcrypto"]
        data = json.loads(crypto.unwrap_key(row.private_jwk, row.kid))
        base = _private_dir()
        key_file = os.path.join(base, row.kid + ".key")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(data["key"])
        cert_file = os.path.join(base, row.kid + ".crt")
        with open(cert_file, "w") as fh:
            fh.write(data["cert"])
        _files[row.kid] = KeyFiles(row.kid, key_file, cert_file, data["cert"])
        return _files[row.kid]
