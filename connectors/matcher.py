"""Deciding what a legacy row is: the same citizen as a person we know, a new one, or
a question for an administrator. Rules apply in order; the first that fits decides and
is recorded with the decision. Nothing ambiguous is ever merged silently."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from idp.extensions import db
from idp.identity import InvalidIdNumber, InvalidPhone, normalize_phone, parse_person_id
from idp.models import Person, id_number_index, phone_index


@dataclass
class Decision:
    action: str  # merge | create | queue
    rule: str
    person_id: str | None = None
    candidates: list[str] = field(default_factory=list)
    id_number: str | None = None  # normalised (15 → 18 converted)
    phone: str | None = None


def same_name(a: str | None, b: str | None) -> bool:
    """Names compared after NFKC (full-width forms) and removing spaces and the middle
    dots of minority and foreign names, which old systems wrote in several ways."""
    def norm(s: str) -> str:
        s = unicodedata.normalize("NFKC", s or "")
        return "".join(ch for ch in s if not ch.isspace() and ch not in "·・.．-").casefold()
    return bool(a and b) and norm(a) == norm(b)


class People:
    """The people a batch of rows may match, fetched in two indexed IN-queries instead
    of two queries per row; people created earlier in the batch are added as they are."""

    def __init__(self, rows) -> None:
        self.by_number: dict[str, Person] = {}
        self.by_phone: dict[str, Person] = {}
        self.taken_phones: set[str] = set()  # given to people created in this batch
        numbers, phones = set(), set()
        for row in rows:
            n = _number(row.id_number)
            if n:
                numbers.add(id_number_index(n))
            p = _phone(row.phone)
            if p:
                phones.add(phone_index(p))
        if numbers:
            for person in db.session.scalars(
                    db.select(Person).where(Person.id_number_idx.in_(numbers))):
                self.by_number[person.id_number_idx] = person
        if phones:
            for person in db.session.scalars(
                    db.select(Person).where(Person.phone_idx.in_(phones))):
                self.by_phone[person.phone_idx] = person

    def add(self, person: Person) -> None:
        self.by_number[person.id_number_idx] = person
        if person.phone_idx:
            self.by_phone[person.phone_idx] = person


def _number(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return parse_person_id(text).number
    except InvalidIdNumber:
        return None


def _phone(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return normalize_phone(text)
    except InvalidPhone:
        return None


def decide(row, *, trusted: bool, people: People | None = None) -> Decision:
    people = people if people is not None else People([row])
    phone = _phone(row.phone)
    by_phone = people.by_phone.get(phone_index(phone)) if phone else None

    if row.id_number:
        try:
            number = parse_person_id(row.id_number).number
        except InvalidIdNumber as exc:
            return Decision("queue", f"invalid_id_number:{exc.code}", phone=phone)
        person = people.by_number.get(id_number_index(number))
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
