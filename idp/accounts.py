"""Creating citizen accounts (CLI, demo data, later imports) through one path."""

from __future__ import annotations

import time

from .crypto.passwords import hash_password
from .extensions import db
from .identity import InvalidIdNumber, InvalidPhone, normalize_phone, parse_person_id
from .models import Person, id_number_index, phone_index


class AccountError(ValueError):
    pass


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
    if db.session.scalar(db.select(Person.id).where(
            Person.id_number_idx == id_number_index(parsed.number))):
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
