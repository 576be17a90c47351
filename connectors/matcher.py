"""Deciding what a legacy row is: the same citizen as a person we know, a new one, or
a question for an administrator. Rules apply in order; the first that fits decides and
is recorded with the decision. Nothing ambiguous is ever merged silently.

Each row's identifiers are parsed and blind-indexed once (:func:`prepare`); a batch's
candidates are fetched with two indexed IN-queries (:class:`People`), as plain values
rather than ORM objects, so a batch of thousands of rows costs two round trips.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from idp.extensions import db
from idp.identity import InvalidIdNumber, InvalidPhone, normalize_phone, parse_person_id
from idp.models import Person, id_number_index, phone_index

from .bulk import among


@dataclass
class Decision:
    action: str  # merge | create | queue
    rule: str
    person_id: str | None = None
    candidates: list[str] = field(default_factory=list)
    id_number: str | None = None  # normalised (15 → 18 converted)
    phone: str | None = None
    org_id: str | None = None  # organisation rows (connectors.org_matcher) …
    org_name: str | None = None  # … and, to create one, its name and type
    org_type: str | None = None


def same_name(a: str | None, b: str | None) -> bool:
    """Names compared after NFKC (full-width forms) and removing spaces and the middle
    dots of minority and foreign names, which old systems wrote in several ways."""
    def norm(s: str) -> str:
        s = unicodedata.normalize("NFKC", s or "")
        return "".join(ch for ch in s if not ch.isspace() and ch not in "·・.．-").casefold()
    return bool(a and b) and norm(a) == norm(b)


@dataclass(slots=True)
class Prepared:
    """A row's identifiers, parsed and indexed once."""

    number: str | None = None  # normalised 18 characters
    number_error: str | None = None  # InvalidIdNumber.code when a number was given
    id_kind: str = "resident"
    number_idx: str | None = None
    phone: str | None = None
    phone_idx: str | None = None


def prepare(row) -> Prepared:
    prep = Prepared()
    if row.id_number:
        try:
            parsed = parse_person_id(row.id_number)
        except InvalidIdNumber as exc:
            prep.number_error = exc.code
        else:
            prep.number, prep.id_kind = parsed.number, parsed.kind
            prep.number_idx = id_number_index(parsed.number)
    if row.phone:
        try:
            prep.phone = normalize_phone(row.phone)
        except InvalidPhone:
            pass
        else:
            prep.phone_idx = phone_index(prep.phone)
    return prep


@dataclass(slots=True)
class Known:
    """What matching needs of a person (no ciphertexts, no ORM state)."""

    id: str
    name: str
    has_password: bool
    number_idx: str | None = None
    phone_idx: str | None = None


class People:
    """The people a batch of rows may match; people created earlier in the batch are
    added as they are made (:meth:`add`)."""

    def __init__(self, prepared) -> None:
        self.by_number: dict[str, Known] = {}
        self.by_phone: dict[str, Known] = {}
        numbers = {p.number_idx for p in prepared if p.number_idx}
        phones = {p.phone_idx for p in prepared if p.phone_idx}
        columns = (Person.id, Person.name, Person.password_hash.is_not(None),
                   Person.id_number_idx, Person.phone_idx)
        for column, wanted in ((Person.id_number_idx, numbers), (Person.phone_idx, phones)):
            if wanted:
                for row in db.session.execute(db.select(*columns).where(among(column, wanted))):
                    self.add(Known(*row))

    def add(self, person: Known) -> None:
        if person.number_idx:
            self.by_number.setdefault(person.number_idx, person)
        if person.phone_idx:
            self.by_phone.setdefault(person.phone_idx, person)


def decide(row, *, trusted: bool, people: People | None = None,
           prep: Prepared | None = None) -> Decision:
    prep = prep if prep is not None else prepare(row)
    people = people if people is not None else People([prep])
    phone = prep.phone
    by_phone = people.by_phone.get(prep.phone_idx) if prep.phone_idx else None

    if row.id_number:
        if prep.number_error:
            return Decision("queue", f"invalid_id_number:{prep.number_error}", phone=phone)
        number = prep.number
        person = people.by_number.get(prep.number_idx)
        if person is not None:
            if by_phone is not None and by_phone.id != person.id:
                return Decision("queue", "ambiguous_two_people",
                                candidates=[person.id, by_phone.id], id_number=number, phone=phone)
            if same_name(person.name, row.name):
                return Decision("merge", "id_number_and_name", person_id=person.id,
                                id_number=number, phone=phone)
            return Decision("queue", "id_number_name_differs", candidates=[person.id],
                            id_number=number, phone=phone)
        if by_phone is not None:
            return Decision("queue", "phone_of_another_person", candidates=[by_phone.id],
                            id_number=number, phone=phone)
        if trusted:
            return Decision("create", "trusted_source_new_person", id_number=number, phone=phone)
        return Decision("queue", "no_match_untrusted_source", id_number=number, phone=phone)

    if by_phone is not None and same_name(by_phone.name, row.name):
        return Decision("queue", "weak_phone_and_name", candidates=[by_phone.id], phone=phone)
    return Decision("queue", "no_id_number", phone=phone)
