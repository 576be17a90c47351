"""Password sign-in by citizen ID number or phone number, with lockout."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from flask import current_app

from ..accounts import person_by_identifier
from ..crypto.passwords import LEGACY_PREFIX, hash_password, needs_rehash, verify_password
from ..extensions import db
from ..identity import InvalidIdNumber, InvalidPhone
from ..models import LegacyAccount, Person
from . import lockout


@dataclass
class LoginResult:
    person: Person | None = None
    error: str | None = None  # machine code: invalid_number, bad_credentials, locked
    detail: str | None = None  # readable text for invalid_number (Chinese)
    detail_en: str | None = None


def find_person(username: str) -> tuple[Person | None, Exception | None, str]:
    """Resolve a typed username to a person.

    Returns (person, validation_error, lockout_key). The key names the account when
    the identifier names one, so its ID number and its phone (in any written form)
    share one lockout; otherwise it is derived from the normalised identifier, so an
    unknown number locks exactly like a known one and lockout reveals nothing."""
    try:
        found = person_by_identifier(username)
    except InvalidPhone as exc:
        return None, exc, _lock_key("phone:" + (username or "").strip())
    except InvalidIdNumber as exc:
        return None, exc, _lock_key("id:" + (username or "").strip())
    if found.person is not None:
        return found.person, None, _lock_key(f"person:{found.person.id}")
    return None, None, _lock_key(f"{found.kind}:{found.value}")


def _lock_key(identifier: str) -> str:
    # Keyed so the store holds no guessable hash of an ID number.
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, identifier.encode(), hashlib.sha256).hexdigest()[:32]


def is_locked(lock_key: str) -> bool:
    return lockout.is_locked(lock_key)


def authenticate(username: str, password: str) -> LoginResult:
    person, number_error, lock_key = find_person(username)
    if number_error:
        return LoginResult(error="invalid_number", detail=number_error.message,
                           detail_en=number_error.message_en)
    stored = person.password_hash if person else None
    usable = person is not None and person.status == "active"
    # End the look-up's transaction: the check below may wait for others of the same
    # account, and must not hold a pooled connection while it does.
    db.session.rollback()
    # Only failures are counted, and parallel checks share the account's budget (see
    # idp.authn.lockout). Should the check raise, its ticket simply expires.
    guard = lockout.begin(lock_key)
    if guard is None:
        return LoginResult(error="locked")
    ok = verify_password(stored, password or "")
    if not ok or not usable:
        return LoginResult(error="locked" if guard.failed() else "bad_credentials")
    guard.succeeded()
    if needs_rehash(person.password_hash):
        was_legacy = person.password_hash.startswith(LEGACY_PREFIX)
        person.password_hash = hash_password(password)
        if was_legacy:
            # The old system's hash has served its purpose: keep no copy of it.
            db.session.execute(db.update(LegacyAccount).where(
                LegacyAccount.person_id == person.id).values(password_hash=None))
        db.session.commit()
    return LoginResult(person=person)
