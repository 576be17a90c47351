"""Real-name verification: does this name go with this ID number in the population register?

``REALNAME_VERIFIER`` picks the verifier: ``"dev"`` (below), ``None`` (the dev verifier
in the embedded demo and tests, none at all otherwise) or ``"package.module:ClassName"``
— a class made with no arguments whose
``verify(name, id_number) -> RealNameResult`` asks the real register (a provincial
data-sharing platform's "two-item check"). ``reasons``: ``mismatch`` (the register has
this number under another name), ``not_in_register``, ``invalid_number``,
``unavailable`` (the register could not be asked).

``verify_person`` is what pages call: it first checks that the details typed are the
account's own — a register says yes to any real person, not only to the one signed in —
limits look-ups per person and day, and on success raises the account to ``L3``.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass

from flask import current_app

from .. import audit, plugins
from ..accounts import person_by_id_number, raise_level
from ..identity import InvalidIdNumber, parse_person_id
from ..models import Person
from ..store import store

log = logging.getLogger(__name__)

DAY = 24 * 3600


@dataclass
class RealNameResult:
    ok: bool
    # None, or: mismatch, not_in_register, invalid_number, unavailable,
    # not_own (details are not the account's), too_many (daily look-ups used up)
    reason: str | None = None


def same_name(a: str, b: str) -> bool:
    """Names compare after NFKC (full-width letters, compatibility forms) and without
    spaces and the middle dots of transliterated names (·, •, .)."""
    def norm(s: str) -> str:
        s = unicodedata.normalize("NFKC", s or "")
        return "".join(ch for ch in s if not ch.isspace() and ch not in "·•.・").casefold()
    return bool(norm(a)) and norm(a) == norm(b)


class DevVerifier:
    """Stands in for the register in demos and tests: a name and number match when an
    account holds both; numbers in ``REALNAME_DEV_NOT_IN_REGISTER`` are absent."""

    def verify(self, name: str, id_number: str) -> RealNameResult:
        try:
            number = parse_person_id(id_number).number
        except InvalidIdNumber:
            return RealNameResult(False, "invalid_number")
        absent = set()
        for raw in current_app.config.get("REALNAME_DEV_NOT_IN_REGISTER") or []:
            try:
                absent.add(parse_person_id(raw).number)
            except InvalidIdNumber:
                continue
        if number in absent:
            return RealNameResult(False, "not_in_register")
        person = person_by_id_number(number)
        if person is None:
            return RealNameResult(False, "not_in_register")
        return RealNameResult(True) if same_name(person.name, name) else RealNameResult(
            False, "mismatch")


class NoVerifier:
    """No register configured outside the embedded demo: every check is "unavailable".
    The dev verifier there would pass anyone who types their own account's details,
    raising self-declared accounts to real-name ``L3``."""

    def verify(self, name: str, id_number: str) -> RealNameResult:
        return RealNameResult(False, "unavailable")


def verifier():
    return plugins.load("REALNAME_VERIFIER", {"dev": DevVerifier}, unset=NoVerifier)


def verify_person(person: Person, name: str, id_number: str, *,
                  client_id: str | None = None) -> RealNameResult:
    """Check the typed name and number are the account's, then ask the register; on
    success the account is raised to L3."""
    try:
        number = parse_person_id(id_number).number
    except InvalidIdNumber:
        number = None
    # Every well-formed attempt counts, matching or not: otherwise the form would let
    # someone holding a stolen session find the hidden digits of the ID number by trying.
    if number is None:
        result = RealNameResult(False, "invalid_number")
    elif store().incr(f"realname:tries:{person.id}", DAY) > int(
            current_app.config["REALNAME_DAILY_TRIES"]):
        result = RealNameResult(False, "too_many")
    elif number != person.id_number or not same_name(person.name, name):
        result = RealNameResult(False, "not_own")
    else:
        try:
            result = verifier().verify(person.name, number)
        except Exception:  # a remote register failing must not become a 500
            log.exception("real-name verifier failed")
            result = RealNameResult(False, "unavailable")
    if result.ok:
        raise_level(person, "L3", "register", actor=person.id, client_id=client_id)
    else:
        audit.record("assurance.refused", actor=person.id, subject=person.id,
                     client_id=client_id, details={"reason": result.reason})
    return result
