"""Password sign-in by citizen ID number or phone number, with lockout."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass

from flask import current_app

from ..crypto.passwords import LEGACY_PREFIX, hash_password, needs_rehash, verify_password
from ..extensions import db
from ..identity import InvalidIdNumber, InvalidPhone, normalize_phone, parse_person_id
from ..models import LegacyAccount, Person, id_number_index, phone_index
from ..store import store


@dataclass
class LoginResult:
    person: Person | None = None
    error: str | None = None  # machine code: invalid_number, bad_credentials, locked
    detail: str | None = None  # readable text for invalid_number (Chinese)
    detail_en: str | None = None


def _looks_like_phone(text: str) -> bool:
    """Phone numbers are 11 digits (optionally +86/0086 in front); ID numbers are 15 or
    18 characters starting with a province code (never 0 or 86), so the two don't clash."""
    s = "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch not in " -()\u3000")
    if s.startswith("+"):
        return True
    return s.isdigit() and (len(s) == 11 or (len(s) == 13 and s.startswith("86"))
                            or (len(s) == 15 and s.startswith("0086")))


def find_person(username: str) -> tuple[Person | None, Exception | None, str]:
    """Resolve a typed username to a person.

    Returns (person, validation_error, lockout_key). The lockout key is derived from the
    normalised identifier whether or not an account exists, so an unknown number
    locks exactly like a known one and lockout reveals nothing."""
    text = (username or "").strip()
    if _looks_like_phone(text):
        try:
            phone = normalize_phone(text)
        except InvalidPhone as exc:
            return None, exc, _lock_key("phone:" + text)
        person = db.session.scalar(db.select(Person).where(Person.phone_idx == phone_index(phone)))
        return person, None, _lock_key("phone:" + phone)
    try:
        parsed = parse_person_id(text)
    except InvalidIdNumber as exc:
        return None, exc, _lock_key("id:" + text)
    person = db.session.scalar(
        db.select(Person).where(Person.id_number_idx == id_number_index(parsed.number)))
    return person, None, _lock_key("id:" + parsed.number)


def _lock_key(identifier: str) -> str:
    # Keyed so the store holds no guessable hash of an ID number.
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, identifier.encode(), hashlib.sha256).hexdigest()[:32]


def is_locked(lock_key: str) -> bool:
    return store().get(f"lock:{lock_key}") is not None


def _lock(lock_key: str) -> None:
    # The attempt counter is left to expire on its own (it was started before the lock,
    # with the same lifetime): resetting it here would let guesses already past the
    # lock check start a fresh count.
    store().set(f"lock:{lock_key}", 1, current_app.config["LOCKOUT_SECONDS"])


def authenticate(username: str, password: str) -> LoginResult:
    cfg = current_app.config
    person, number_error, lock_key = find_person(username)
    if number_error:
        return LoginResult(error="invalid_number", detail=number_error.message,
                           detail_en=number_error.message_en)
    if is_locked(lock_key):
        return LoginResult(error="locked")
    # The attempt is counted before the password is checked: counting only failures,
    # afterwards, would let many parallel guesses all pass the check before any of them
    # is counted. A success clears the count.
    threshold = cfg["LOCKOUT_THRESHOLD"]
    attempts = store().incr(f"fail:{lock_key}", cfg["LOCKOUT_SECONDS"])
    if attempts > threshold:
        _lock(lock_key)
        return LoginResult(error="locked")
    ok = verify_password(person.password_hash if person else None, password or "")
    if not ok or person is None or person.status != "active":
        if attempts >= threshold:
            _lock(lock_key)
            return LoginResult(error="locked")
        return LoginResult(error="bad_credentials")
    store().delete(f"fail:{lock_key}")
    if needs_rehash(person.password_hash):
        was_legacy = person.password_hash.startswith(LEGACY_PREFIX)
        person.password_hash = hash_password(password)
        if was_legacy:
            # The old system's hash has served its purpose: keep no copy of it.
            db.session.execute(db.update(LegacyAccount).where(
                LegacyAccount.person_id == person.id).values(password_hash=None))
        db.session.commit()
    return LoginResult(person=person)
