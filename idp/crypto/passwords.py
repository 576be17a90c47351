"""Password hashing under a configurable policy.

``argon2id`` (RFC 9106, argon2-cffi) by default; ``pbkdf2-sm3`` (PBKDF2 with HMAC-SM3,
OpenSSL through hashlib) where national algorithms are mandated. A stored hash made
under another policy, or with weaker parameters, still verifies and is replaced at
the next successful sign-in (``needs_rehash``).

PBKDF2-SM3 hashes are stored as ``$pbkdf2-sm3$i=<iterations>$<salt>$<hash>`` with
unpadded standard base64, in the style of the PHC string format.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

PBKDF2_PREFIX = "$pbkdf2-sm3$"
LEGACY_PREFIX = "$legacy$"  # imported from an older system (idp.crypto.legacy_hashes)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _argon2() -> PasswordHasher:
    app = current_app
    ph = app.extensions.get("idp.argon2")
    if ph is None:
        ph = PasswordHasher(
            time_cost=app.config["ARGON2_TIME_COST"],
            memory_cost=app.config["ARGON2_MEMORY_COST"],
            parallelism=app.config["ARGON2_PARALLELISM"],
        )
        app.extensions["idp.argon2"] = ph
    return ph


def _policy() -> str:
    policy = current_app.config["PASSWORD_HASH"]
    if policy not in ("argon2id", "pbkdf2-sm3"):
        raise ValueError(f"unknown PASSWORD_HASH policy {policy!r}")
    return policy


def _pbkdf2_sm3(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sm3", password.encode(), salt, iterations)


def hash_password(password: str) -> str:
    if _policy() == "argon2id":
        return _argon2().hash(password)
    iterations = current_app.config["PBKDF2_SM3_ITERATIONS"]
    salt = secrets.token_bytes(16)
    digest = _pbkdf2_sm3(password, salt, iterations)
    return f"{PBKDF2_PREFIX}i={iterations}${_b64(salt)}${_b64(digest)}"


def _verify_pbkdf2(stored: str, password: str) -> bool:
    try:
        params, salt, digest = stored[len(PBKDF2_PREFIX):].split("$")
        iterations = int(params.removeprefix("i="))
        expected = _unb64(digest)
        salt_raw = _unb64(salt)
    except ValueError:
        return False
    if not 1_000 <= iterations <= 10_000_000:
        return False
    return hmac.compare_digest(_pbkdf2_sm3(password, salt_raw, iterations), expected)


def _slots() -> threading.BoundedSemaphore:
    """Hashes allowed at once in this worker. Each Argon2id hash takes 64 MiB and a
    core; unbounded, a burst of sign-ins takes gigabytes and starves every other
    request of CPU, for no gain in sign-ins per second."""
    app = current_app
    sem = app.extensions.get("idp.hash_slots")
    if sem is None:
        sem = threading.BoundedSemaphore(app.config["PASSWORD_HASH_CONCURRENCY"])
        app.extensions["idp.hash_slots"] = sem
    return sem


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches. With no stored hash a dummy hash of the current
    policy is checked, so an unknown account costs the same time as a known one."""
    target = stored or _dummy_hash()
    with _slots():
        if target.startswith(LEGACY_PREFIX):
            from .legacy_hashes import verify_legacy

            ok = verify_legacy(target, password)
        elif target.startswith(PBKDF2_PREFIX):
            ok = _verify_pbkdf2(target, password)
        else:
            try:
                ok = _argon2().verify(target, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
    return ok and stored is not None


def needs_rehash(stored: str) -> bool:
    if stored.startswith(LEGACY_PREFIX):
        return True  # an imported hash is used once, then replaced
    policy = _policy()
    if stored.startswith(PBKDF2_PREFIX):
        if policy != "pbkdf2-sm3":
            return True
        try:
            iterations = int(stored[len(PBKDF2_PREFIX):].split("$")[0].removeprefix("i="))
        except ValueError:
            return True
        return iterations < current_app.config["PBKDF2_SM3_ITERATIONS"]
    if policy != "argon2id":
        return True
    try:
        return _argon2().check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _dummy_hash() -> str:
    key = "idp.password.dummy." + _policy()
    dummy = current_app.extensions.get(key)
    if dummy is None:
        dummy = hash_password(secrets.token_urlsafe(16))
        current_app.extensions[key] = dummy
    return dummy
