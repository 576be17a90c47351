"""Creating citizen accounts (CLI, demo data, later imports) through one path."""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass

from .crypto.passwords import hash_password
from .extensions import db
from .identity import InvalidIdNumber, InvalidPhone, normalize_phone, parse_person_id
from .models import Person, id_number_index, phone_index


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class Identifier:
    """What a typed identifier turned out to be: ``kind`` ``id`` or ``phone``, the
    normalised ``value``, and the person it names (None: nobody, or a phone shared by
    several accounts, which names nobody in particular)."""

    kind: str
    value: str
    person: Person | None


def looks_like_phone(text: str) -> bool:
    """Phone numbers are 11 digits (optionally +86/0086 in front); ID numbers are 15 or
    18 characters starting with a province code (never 0 or 86), so the two don't clash."""
    s = "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch not in " -()\u3000")
    if s.startswith("+"):
        return True
    return s.isdigit() and (len(s) == 11 or (len(s) == 13 and s.startswith("86"))
                            or (len(s) == 15 and s.startswith("0086")))


def person_by_id_number(number: str) -> Person | None:
    """The person holding an already normalised ID number (``parse_person_id().number``)."""
    return db.session.scalar(db.select(Person).where(
        Person.id_number_idx == id_number_index(number)))


def person_by_phone(phone: str) -> Person | None:
    """The one person registered with an already normalised phone number, or None."""
    found = db.session.scalars(db.select(Person).where(
        Person.phone_idx == phone_index(phone)).limit(2)).all()
    return found[0] if len(found) == 1 else None


def phone_in_use(phone: str) -> bool:
    """Whether any account holds this already normalised phone number (a new account
    must not share it: a shared number signs nobody in)."""
    return db.session.scalar(db.select(Person.id).where(
        Person.phone_idx == phone_index(phone)).limit(1)) is not None


def person_by_identifier(text: str, *, phone: bool = True) -> Identifier:
    """Resolve what a person or an operator typed — an ID number in any accepted written
    form (15 digits, lower-case x, full-width digits, permits) or, with ``phone``, a
    mainland mobile number (``+86``/``0086`` forms too) — to the person it names.

    The one look-up by identifier for sign-in, counters, hotlines, the CLI and the
    console. Raises :class:`~idp.identity.InvalidIdNumber` or
    :class:`~idp.identity.InvalidPhone` (each with ``message``/``message_en``) when the
    text cannot be either."""
    text = (text or "").strip()
    if len(text) > 64:
        raise InvalidIdNumber("length", "证件号码过长", "the identifier is too long")
    if phone and looks_like_phone(text):
        value = normalize_phone(text)
        return Identifier("phone", value, person_by_phone(value))
    number = parse_person_id(text).number
    return Identifier("id", number, person_by_id_number(number))


MIN_PASSWORD = 8


def create_person(id_number: str, name: str, password: str | None, phone: str | None = None,
                  level: str = "L2") -> Person:
    try:
        parsed = parse_person_id(id_number)
    except InvalidIdNumber as exc:
        raise AccountError(f"invalid ID number: {exc.message_en}") from None
    name = (name or "").strip()
    if not name or len(name) > 128:
        raise AccountError("name must be 1–128 characters")
    if password is not None and len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
    norm_phone = None
    if phone:
        try:
            norm_phone = normalize_phone(phone)
        except InvalidPhone as exc:
            raise AccountError(f"invalid phone number: {exc.message_en}") from None
    if person_by_id_number(parsed.number) is not None:
        raise AccountError("a person with this ID number already exists")
    if norm_phone and db.session.scalar(db.select(Person.id).where(
            Person.phone_idx == phone_index(norm_phone))):
        raise AccountError("this phone number is already registered to another person")
    person = Person(id_number=parsed.number, id_kind=parsed.kind, name=name, phone=norm_phone,
                    password_hash=hash_password(password) if password else None,
                    assurance_level=level)
    db.session.add(person)
    db.session.commit()
    return person


def raise_level(person: Person, level: str, method: str, *, actor: str,
                client_id: str | None = None) -> bool:
    """Record that the account was verified to ``level`` by ``method`` (real-name
    register, kiosk chip and face, counter): only ever upwards. True if it changed."""
    from . import audit
    from .authn import assurance

    before = person.assurance_level
    if assurance.rank(before) >= assurance.rank(level):
        return False
    person.assurance_level = level
    person.assurance_method = method
    person.assurance_verified_at = time.time()
    db.session.commit()
    audit.record("assurance.raised", actor=actor, subject=person.id, client_id=client_id,
                 details={"from": before, "to": level, "method": method})
    return True
