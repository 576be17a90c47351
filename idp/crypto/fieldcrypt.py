"""Personal data and private keys at rest: SM4-GCM encryption and HMAC-SM3 blind indexes.

One key-encryption key (KEK) from configuration; every working key is derived from it
with HKDF-SM3 under its own label, so the encryption key, the index key and the
key-wrapping key are independent and a leak of one index reveals nothing else.

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


def _derive(kek: bytes, label: str, length: int) -> bytes:
    return HKDF(algorithm=hashes.SM3(), length=length, salt=None,
                info=b"idp:" + label.encode()).derive(kek)


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


class FieldCrypto:
    def __init__(self, kek: bytes):
        self._enc = _derive(kek, "pii/sm4-gcm", 16)
        self._wrap = _derive(kek, "keys/sm4-gcm", 16)
        self._index = _derive(kek, "pii/blind-index", 32)
        self._pairwise = _derive(kek, "subject/pairwise", 32)

    def _seal(self, key: bytes, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(context.encode())
        body = enc.update(plaintext.encode()) + enc.finalize()
        raw = nonce + body + enc.tag
        return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _open(self, key: bytes, token: str, context: str) -> str:
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
