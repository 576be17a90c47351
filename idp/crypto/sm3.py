"""SM3 hash (GB/T 32905-2016 / GM/T 0004-2012) through OpenSSL.

Python's ``hashlib`` exposes SM3 when the OpenSSL it links provides it (OpenSSL 1.1.1+
default provider); otherwise the SM3 of ``cryptography``'s bundled OpenSSL is used.
Either way the hashing runs in C.

``half_hash_sm3`` is the OpenID Connect ``at_hash`` / ``c_hash`` for tokens signed with
``SM2SM3``: Core 1.0 §3.1.3.6 says to hash the token's ASCII octets with the hash of the
JWS ``alg`` — SM3 here — and base64url-encode the left-most half of the digest.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Protocol

__all__ = ["DIGEST_SIZE", "half_hash_sm3", "sm3_digest", "sm3_new"]

DIGEST_SIZE = 32


class SM3Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def copy(self) -> SM3Hash: ...

    def digest(self) -> bytes: ...


def _hashlib_has_sm3() -> bool:
    try:
        hashlib.new("sm3")
    except ValueError:
        return False
    return True


if _hashlib_has_sm3():

    def sm3_new(data: bytes = b"") -> SM3Hash:
        """A fresh SM3 hash object (``update`` / ``copy`` / ``digest``), fed ``data``."""
        return hashlib.new("sm3", data)

else:  # pragma: no cover - depends on how Python's OpenSSL was built
    from cryptography.hazmat.primitives import hashes

    class _CryptographySM3:
        __slots__ = ("_ctx",)

        def __init__(self, ctx: hashes.Hash) -> None:
            self._ctx = ctx

        def update(self, data: bytes, /) -> None:
            self._ctx.update(data)

        def copy(self) -> _CryptographySM3:
            return _CryptographySM3(self._ctx.copy())

        def digest(self) -> bytes:
            return self._ctx.copy().finalize()

    def sm3_new(data: bytes = b"") -> SM3Hash:
        """A fresh SM3 hash object (``update`` / ``copy`` / ``digest``), fed ``data``."""
        obj = _CryptographySM3(hashes.Hash(hashes.SM3()))
        if data:
            obj.update(data)
        return obj


def sm3_digest(data: bytes) -> bytes:
    """The 32-byte SM3 digest of ``data``."""
    return sm3_new(data).digest()


def half_hash_sm3(token: str | bytes) -> str:
    """``at_hash`` / ``c_hash`` for ``SM2SM3``: base64url (no padding) of the left half
    (16 bytes) of SM3 over the token's octets."""
    data = token.encode("ascii") if isinstance(token, str) else bytes(token)
    half = sm3_digest(data)[: DIGEST_SIZE // 2]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode("ascii")
