"""Password hashes imported from older government systems.

An imported account keeps the hash its source system made until the citizen signs in
once with the old password; the provider then re-hashes the password under the current
policy (:mod:`idp.crypto.passwords`) and deletes the legacy hash. Legacy hashes share
the ``password_hash`` column with modern ones, so they carry a prefix no modern hash
uses (Argon2 hashes start ``$argon2``, PBKDF2-SM3 ones ``$pbkdf2-sm3$``).

Stored form (ABNF, RFC 5234; every part is ASCII and case-sensitive)::

    stored      = "$legacy$" format "$" salt "$" hash
    format      = digest-fmt / pbkdf2-fmt "," "i=" iterations / "bcrypt"
    digest-fmt  = algo [ "-salt-before" / "-salt-after" ]
    algo        = "md5" / "sha1" / "sha256" / "sm3"
    pbkdf2-fmt  = "pbkdf2-sha1" / "pbkdf2-sha256"
    iterations  = %x31-39 *7DIGIT            ; 1 .. 10000000, no leading zero
    salt        = "" / 1*256(2LHEX)           ; empty exactly when the format is
                                              ; unsalted (md5, sha1, sha256, sm3, bcrypt)
    hash        = 1*(2LHEX) / bcrypt-string   ; bcrypt-string only for "bcrypt"
    LHEX        = DIGIT / %x61-66             ; lower-case hex only
    bcrypt-string = "$2" ("a" / "b" / "y") "$" 2DIGIT "$" 53(ALPHA / DIGIT / "." / "/")

Normalisation at import (:func:`encode_legacy`): whatever the source gave, ``salt`` is
stored as the lower-case hex of the exact salt *bytes* fed to the hash (a UTF-8 salt
``"NaCl"`` is stored as ``4e61436c``), and ``hash`` as the lower-case hex of the raw
digest / derived key. The stored form thus has one spelling per hash, no ``$`` can
appear inside a salt, and verification never has to guess an encoding. A bcrypt string
already carries its own salt and cost and is stored verbatim.

Algorithms (passwords are encoded as UTF-8; ``salt`` below means the salt bytes):

* ``<algo>``             : ``algo(password)``
* ``<algo>-salt-before`` : ``algo(salt + password)``
* ``<algo>-salt-after``  : ``algo(password + salt)``
* ``pbkdf2-sha1`` / ``pbkdf2-sha256`` : PBKDF2-HMAC (RFC 8018) with the salt, the
  iteration count, and a derived-key length equal to the stored key's (16..64 bytes)
* ``bcrypt`` : ``$2a$`` / ``$2b$`` / ``$2y$``, cost 04..16. Only the first 72 bytes of
  the password count, as in every bcrypt the source systems used.

SM3 comes from OpenSSL through ``hashlib.new("sm3")``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

import bcrypt

PREFIX = "$legacy$"

_DIGEST_SIZES = {"md5": 16, "sha1": 20, "sha256": 32, "sm3": 32}
_PBKDF2_ALGOS = {"pbkdf2-sha1": "sha1", "pbkdf2-sha256": "sha256"}

DIGEST_FORMATS = frozenset(
    f"{algo}{suffix}" for algo in _DIGEST_SIZES for suffix in ("", "-salt-before", "-salt-after")
)
PBKDF2_FORMATS = frozenset(_PBKDF2_ALGOS)
FORMATS = DIGEST_FORMATS | PBKDF2_FORMATS | {"bcrypt"}

MAX_SALT_BYTES = 256
PBKDF2_MIN_KEY_BYTES = 16
PBKDF2_MAX_KEY_BYTES = 64
PBKDF2_MAX_ITERATIONS = 10_000_000
BCRYPT_MIN_COST = 4
# A stored hash is verified on every sign-in attempt against that account; cost 17 and
# above takes seconds per attempt, which an importer should raise with us, not store.
BCRYPT_MAX_COST = 16
BCRYPT_MAX_PASSWORD_BYTES = 72

_LHEX = re.compile(r"(?:[0-9a-f]{2})+")
_ANY_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_ITERATIONS = re.compile(r"[1-9][0-9]{0,7}")
_BCRYPT = re.compile(r"\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{53}")


class LegacyHashError(ValueError):
    """An import row whose legacy hash cannot be stored as given."""


@dataclass(frozen=True)
class _Parsed:
    fmt: str
    salt: bytes
    hash: str  # lower-case hex, or the bcrypt string
    iterations: int = 0


def _algo(fmt: str) -> tuple[str, str]:
    """("md5-salt-after") -> ("md5", "after"); unsalted -> (algo, "")."""
    for position in ("before", "after"):
        suffix = f"-salt-{position}"
        if fmt.endswith(suffix):
            return fmt[: -len(suffix)], position
    return fmt, ""


def _is_salted(fmt: str) -> bool:
    return fmt in PBKDF2_FORMATS or (fmt in DIGEST_FORMATS and _algo(fmt)[1] != "")


# --------------------------------------------------------------------------- import


def _decode_hash(fmt: str, value: str, encoding: str) -> bytes:
    if encoding == "hex":
        if not _ANY_HEX.fullmatch(value):
            raise LegacyHashError(
                f"{fmt}: hash must be hexadecimal with an even number of digits, "
                f"got {len(value)} characters"
            )
        return bytes.fromhex(value)
    if encoding == "base64":
        if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", value):
            raise LegacyHashError(f"{fmt}: hash is not standard base64")
        if "=" in value and len(value) % 4:
            raise LegacyHashError(f"{fmt}: base64 hash has wrong padding")
        try:
            return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except binascii.Error as exc:
            raise LegacyHashError(f"{fmt}: hash is not valid base64 ({exc})") from None
    raise LegacyHashError(f"hash_encoding must be 'hex' or 'base64', not {encoding!r}")


def _decode_salt(fmt: str, salt: str, encoding: str) -> bytes:
    if encoding == "utf8":
        try:
            raw = salt.encode("utf-8")
        except UnicodeEncodeError:
            raise LegacyHashError(f"{fmt}: salt is not encodable as UTF-8") from None
    elif encoding == "hex":
        if not _ANY_HEX.fullmatch(salt):
            raise LegacyHashError(
                f"{fmt}: salt_encoding='hex' but the salt is not an even number of hex digits"
            )
        raw = bytes.fromhex(salt)
    else:
        raise LegacyHashError(f"salt_encoding must be 'utf8' or 'hex', not {encoding!r}")
    if not 1 <= len(raw) <= MAX_SALT_BYTES:
        raise LegacyHashError(f"{fmt}: salt must be 1..{MAX_SALT_BYTES} bytes, got {len(raw)}")
    return raw


def encode_legacy(fmt: str, hash_value: str, salt: str | None = None, **params: object) -> str:
    """Stored form of a hash imported from a legacy system (see the module docstring).

    ``params``: ``salt_encoding`` ("utf8", the default, or "hex"), ``hash_encoding``
    ("hex", the default, or "base64"; not for bcrypt), and for ``pbkdf2-*`` the
    required ``iterations``. Raises :class:`LegacyHashError` on an unknown format, a
    hash of the wrong length or alphabet, a salt where none belongs (or none where one
    is needed), or an unknown / inapplicable parameter — the row must be rejected.
    """
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise LegacyHashError(
            f"unknown legacy hash format {fmt!r}; expected one of {', '.join(sorted(FORMATS))}"
        )
    if not isinstance(hash_value, str) or not hash_value:
        raise LegacyHashError(f"{fmt}: hash must be a non-empty string")
    if salt is not None and not isinstance(salt, str):
        raise LegacyHashError(f"{fmt}: salt must be a string or None")

    allowed = {"salt_encoding", "hash_encoding"}
    if fmt in PBKDF2_FORMATS:
        allowed.add("iterations")
    if fmt == "bcrypt":
        allowed = set()
    unknown = set(params) - allowed
    if unknown:
        raise LegacyHashError(f"{fmt}: unexpected parameter(s) {', '.join(sorted(unknown))}")
    salt_encoding = params.get("salt_encoding", "utf8")
    hash_encoding = params.get("hash_encoding", "hex")

    if fmt == "bcrypt":
        if salt:
            raise LegacyHashError("bcrypt: the salt is part of the hash string; pass no salt")
        match = _BCRYPT.fullmatch(hash_value)
        if not match:
            raise LegacyHashError(
                "bcrypt: hash must look like $2a$/$2b$/$2y$, two-digit cost, '$', "
                "then 53 characters of [./A-Za-z0-9]"
            )
        cost = int(match.group(1))
        if not BCRYPT_MIN_COST <= cost <= BCRYPT_MAX_COST:
            raise LegacyHashError(
                f"bcrypt: cost {cost} outside {BCRYPT_MIN_COST}..{BCRYPT_MAX_COST}"
            )
        return f"{PREFIX}bcrypt$${hash_value}"

    if _is_salted(fmt):
        if not salt:
            raise LegacyHashError(f"{fmt}: a non-empty salt is required")
        salt_raw = _decode_salt(fmt, salt, str(salt_encoding))
    else:
        if salt:
            raise LegacyHashError(
                f"{fmt}: format is unsalted but a salt was given; declare a -salt-* format"
            )
        if "salt_encoding" in params:
            raise LegacyHashError(f"{fmt}: salt_encoding given for an unsalted format")
        salt_raw = b""

    digest = _decode_hash(fmt, hash_value, str(hash_encoding))
    if fmt in DIGEST_FORMATS:
        expected = _DIGEST_SIZES[_algo(fmt)[0]]
        if len(digest) != expected:
            raise LegacyHashError(
                f"{fmt}: hash must be {expected} bytes ({2 * expected} hex digits), "
                f"got {len(digest)} bytes"
            )
        return f"{PREFIX}{fmt}${salt_raw.hex()}${digest.hex()}"

    # pbkdf2-*
    if not PBKDF2_MIN_KEY_BYTES <= len(digest) <= PBKDF2_MAX_KEY_BYTES:
        raise LegacyHashError(
            f"{fmt}: derived key must be {PBKDF2_MIN_KEY_BYTES}..{PBKDF2_MAX_KEY_BYTES} "
            f"bytes, got {len(digest)}"
        )
    iterations = params.get("iterations")
    if isinstance(iterations, str) and _ITERATIONS.fullmatch(iterations):
        iterations = int(iterations)
    if (
        not isinstance(iterations, int)
        or isinstance(iterations, bool)
        or not 1 <= iterations <= PBKDF2_MAX_ITERATIONS
    ):
        raise LegacyHashError(
            f"{fmt}: iterations must be an integer 1..{PBKDF2_MAX_ITERATIONS}, got {iterations!r}"
        )
    return f"{PREFIX}{fmt},i={iterations}${salt_raw.hex()}${digest.hex()}"


# ------------------------------------------------------------------------ verify


def is_legacy(stored: object) -> bool:
    """True when ``stored`` uses the legacy stored form's prefix (well-formed or not):
    such a value must go to :func:`verify_legacy`, never to a modern verifier."""
    return isinstance(stored, str) and stored.startswith(PREFIX)


def _parse(stored: object) -> _Parsed | None:
    if not isinstance(stored, str) or not stored.startswith(PREFIX):
        return None
    parts = stored[len(PREFIX) :].split("$", 2)
    if len(parts) != 3:
        return None
    spec, salt_hex, hash_part = parts
    fmt, _, param = spec.partition(",")
    if fmt not in FORMATS:
        return None

    if fmt == "bcrypt":
        match = _BCRYPT.fullmatch(hash_part)
        if param or salt_hex or not match:
            return None
        if not BCRYPT_MIN_COST <= int(match.group(1)) <= BCRYPT_MAX_COST:
            return None
        return _Parsed(fmt, b"", hash_part)

    iterations = 0
    if fmt in PBKDF2_FORMATS:
        if not param.startswith("i=") or not _ITERATIONS.fullmatch(param[2:]):
            return None
        iterations = int(param[2:])
        if iterations > PBKDF2_MAX_ITERATIONS:
            return None
    elif param or spec != fmt:
        return None

    if _is_salted(fmt):
        if not _LHEX.fullmatch(salt_hex) or len(salt_hex) > 2 * MAX_SALT_BYTES:
            return None
    elif salt_hex:
        return None

    if not _LHEX.fullmatch(hash_part):
        return None
    size = len(hash_part) // 2
    if fmt in DIGEST_FORMATS:
        if size != _DIGEST_SIZES[_algo(fmt)[0]]:
            return None
    elif not PBKDF2_MIN_KEY_BYTES <= size <= PBKDF2_MAX_KEY_BYTES:
        return None
    return _Parsed(fmt, bytes.fromhex(salt_hex), hash_part, iterations)


def _compute(parsed: _Parsed, password: bytes) -> bytes:
    if parsed.fmt in PBKDF2_FORMATS:
        return hashlib.pbkdf2_hmac(
            _PBKDF2_ALGOS[parsed.fmt],
            password,
            parsed.salt,
            parsed.iterations,
            len(parsed.hash) // 2,
        )
    algo, position = _algo(parsed.fmt)
    if position == "before":
        data = parsed.salt + password
    elif position == "after":
        data = password + parsed.salt
    else:
        data = password
    return hashlib.new(algo, data).digest()


def verify_legacy(stored: str, password: str) -> bool:
    """True when ``password`` matches the legacy ``stored`` hash. Returns False — never
    raises — for a wrong password, a malformed or non-legacy ``stored`` value, or a
    password that is not a UTF-8-encodable string. Digests are compared in constant
    time (``hmac.compare_digest``; bcrypt's own check for bcrypt)."""
    parsed = _parse(stored)
    if parsed is None or not isinstance(password, str):
        return False
    try:
        secret = password.encode("utf-8")
    except UnicodeEncodeError:
        return False
    if parsed.fmt == "bcrypt":
        try:
            return bcrypt.checkpw(secret[:BCRYPT_MAX_PASSWORD_BYTES], parsed.hash.encode("ascii"))
        except ValueError:
            return False
    return hmac.compare_digest(_compute(parsed, secret), bytes.fromhex(parsed.hash))
