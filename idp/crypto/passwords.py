"""Password hashing: Argon2id (RFC 9106) through argon2-cffi."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app


def _hasher() -> PasswordHasher:
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


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches. With no stored hash a dummy hash is checked,
    so an unknown account costs the same time as a known one."""
    ph = _hasher()
    target = stored or _dummy_hash()
    try:
        ok = ph.verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and stored is not None


def needs_rehash(stored: str) -> bool:
    try:
        return _hasher().check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _dummy_hash() -> str:
    app = current_app
    dummy = app.extensions.get("idp.argon2.dummy")
    if dummy is None:
        dummy = _hasher().hash("not-a-password-of-anyone")
        app.extensions["idp.argon2.dummy"] = dummy
    return dummy
