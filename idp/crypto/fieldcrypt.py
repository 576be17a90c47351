"""Personal data and private keys at rest: SM4-GCM encryption and HMAC-SM3 blind indexes.

One key-encryption key (KEK) from configuration guards the working keys: each purpose
(encryption, index, key wrapping, pairwise subjects) has its own independent key, so a
leak of one index reveals nothing else. The working keys are data keys stored wrapped
under the KEK (:mod:`idp.crypto.envelope`, which explains how a database whose keys were
derived from the KEK by HKDF-SM3 moves to them unchanged, and how the KEK is rotated).

Ciphertext format: ``sm4gcm1.<base64url(nonce‖ciphertext‖tag)>``. The column a
value belongs to is bound in as associated data, so a ciphertext copied from one
column into another (say, a phone into the ID-number column) fails to decrypt.
A blind index is HMAC-SM3 of the normalised value, hex; equal values give equal
indexes, so look-up stays an indexed equality query without decrypting anything.
"""

from __future__ import annotations

import base64
import binascii
import hmac as std_hmac
import os
import secrets
import threading
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sm4gcm1."
_NONCE = 12
_TAG = 16


class DecryptionError(ValueError):
    pass


def derive(kek: bytes, label: str, length: int) -> bytes:
    return HKDF(algorithm=hashes.SM3(), length=length, salt=None,
                info=b"idp:" + label.encode()).derive(kek)


def seal(key: bytes, plaintext: str, context: str) -> str:
    nonce = secrets.token_bytes(_NONCE)
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(context.encode())
    body = enc.update(plaintext.encode()) + enc.finalize()
    raw = nonce + body + enc.tag
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unseal(key: bytes, token: str, context: str) -> str:
    if not token.startswith(PREFIX):
        raise DecryptionError("not an SM4-GCM value")
    data = token[len(PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError("malformed ciphertext") from exc
    if len(raw) < _NONCE + _TAG:
        raise DecryptionError("malformed ciphertext")
    nonce, body, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(context.encode())
    try:
        return (dec.update(body) + dec.finalize()).decode()
    except InvalidTag as exc:
        raise DecryptionError("wrong key, wrong column or altered value") from exc


def parse_kek(text: str) -> bytes:
    """A KEK given as 64 hex characters or base64 of 32 bytes."""
    text = text.strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
        except (binascii.Error, ValueError):
            raw = b""
    if len(raw) != 32:
        raise ValueError("the key-encryption key must be 32 bytes (64 hex characters)")
    return raw


def kek_id(kek: bytes) -> str:
    """A short public identifier of a KEK (HKDF output under its own label: reveals
    nothing of the key) — what backups and ``idp kek status`` name it by."""
    return derive(kek, "kek/id", 8).hex()


# purpose -> (HKDF label of the key it was derived with, length in bytes)
PURPOSES: dict[str, tuple[str, int]] = {
    "pii": ("pii/sm4-gcm", 16),
    "wrap": ("keys/sm4-gcm", 16),
    "index": ("pii/blind-index", 32),
    "pairwise": ("subject/pairwise", 32),
}


def derived(kek: bytes) -> dict[str, bytes]:
    """The working keys as they were derived from the KEK before data keys were stored
    (and as :func:`idp.crypto.envelope.adopt` stores them)."""
    return {p: derive(kek, label, n) for p, (label, n) in PURPOSES.items()}


class KekRing:
    """The configured KEK and, during a rotation, the previous one, by id."""

    def __init__(self, current: bytes, previous: bytes | None = None):
        self.current, self.previous = current, previous
        self.current_id = kek_id(current)
        self.previous_id = kek_id(previous) if previous else None

    def by_id(self, ident: str) -> bytes | None:
        if ident == self.current_id:
            return self.current
        if ident == self.previous_id:
            return self.previous
        return None

    def legacy(self) -> bytes:
        """The KEK existing data was derived under, when no data key is stored yet."""
        return self.previous or self.current


class FieldCrypto:
    """The working keys: the stored data keys that ``loader`` returns
    (:func:`idp.crypto.envelope.load`), loaded once per process on first use; else (no
    loader, or nothing stored yet) the keys derived from the KEK — the very same keys."""

    def __init__(self, kek: bytes, previous: bytes | None = None, *,
                 loader: Callable[[KekRing], dict[str, bytes] | None] | None = None):
        self.ring = KekRing(kek, previous)
        self._loader = loader
        self._keys: dict[str, bytes] | None = None if loader else derived(self.ring.legacy())
        self._lock = threading.Lock()

    def _key(self, purpose: str) -> bytes:
        keys = self._keys
        if keys is None:
            with self._lock:
                if self._keys is None:
                    # Data keys never change (a rotation re-wraps them only): once
                    # loaded they serve this process for good. None: none stored yet;
                    # the derived keys are what adoption will store, so they serve too.
                    self._keys = self._loader(self.ring) or derived(self.ring.legacy())
                keys = self._keys
        return keys[purpose]

    @property
    def _enc(self) -> bytes:
        return self._key("pii")

    @property
    def _wrap(self) -> bytes:
        return self._key("wrap")

    @property
    def _index(self) -> bytes:
        return self._key("index")

    @property
    def _pairwise(self) -> bytes:
        return self._key("pairwise")

    def _seal(self, key: bytes, plaintext: str, context: str) -> str:
        return seal(key, plaintext, context)

    def _open(self, key: bytes, token: str, context: str) -> str:
        return unseal(key, token, context)

    def encrypt(self, plaintext: str, context: str) -> str:
        return self._seal(self._enc, plaintext, context)

    def decrypt(self, token: str, context: str) -> str:
        return self._open(self._enc, token, context)

    def wrap_key(self, private_jwk_json: str, kid: str) -> str:
        return self._seal(self._wrap, private_jwk_json, "signing-key:" + kid)

    def unwrap_key(self, token: str, kid: str) -> str:
        return self._open(self._wrap, token, "signing-key:" + kid)

    def blind_index(self, normalised: str, context: str) -> str:
        mac = c_hmac.HMAC(self._index, hashes.SM3())
        mac.update(context.encode() + b"\x00" + normalised.encode())
        return mac.finalize().hex()

    def pairwise_subject(self, sector: str, person_id: str) -> str:
        """OIDC Core §8.1 pairwise ``sub``: the same for every client of one sector, and
        unlinkable across sectors without this key."""
        mac = c_hmac.HMAC(self._pairwise, hashes.SM3())
        mac.update(sector.encode() + b"\x00" + person_id.encode())
        return base64.urlsafe_b64encode(mac.finalize()).decode().rstrip("=")

    def same_index(self, a: str, b: str) -> bool:
        return std_hmac.compare_digest(a, b)


def instance_kek(path: str) -> str:
    """The embedded default's KEK: made once, readable by the owner only."""
    if os.path.exists(path):
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
