"""Side-by-side evidence for a reviewer: what differs between the legacy row and a
candidate account, without unmasking more than the difference itself.

Masking alone hides exactly what a reviewer must see ("张叁" and "张三" are both "张*").
So each pair is compared on the raw values here, on the server, and only then masked:
characters the two share stay masked as usual (a name keeps its first character, a
number its usual visible head and tail), characters that differ are shown on both sides
and marked. Nothing raw leaves this module except those differing characters.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from connectors.importer import read_row
from idp.extensions import db
from idp.identity import InvalidIdNumber, normalize_identifier, parse_person_id
from idp.identity.masking import mask_id_number, mask_phone
from idp.models import LegacyAccount, Person, ReviewItem

MASK = "*"


@dataclass(frozen=True)
class Piece:
    text: str
    changed: bool


@dataclass
class FieldDiff:
    field: str
    legacy: list[Piece] = field(default_factory=list)
    account: list[Piece] = field(default_factory=list)
    same: bool = True
    note: str = ""  # e.g. "3 of 18 characters differ"


def _name_pieces(a: str, b: str) -> tuple[list[Piece], list[Piece], bool]:
    left: list[Piece] = []
    right: list[Piece] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for k, ch in enumerate(a[i1:i2]):
                shown = ch if i1 + k == 0 else MASK  # the usual mask keeps the first char
                left.append(Piece(shown, False))
                right.append(Piece(ch if j1 + k == 0 else MASK, False))
        else:
            if i2 > i1:
                left.append(Piece(a[i1:i2], True))
            if j2 > j1:
                right.append(Piece(b[j1:j2], True))
    return left, right, a == b


def _number_pieces(a: str, b: str, masked_a: str, masked_b: str
                   ) -> tuple[list[Piece], list[Piece], int]:
    """Same-length numbers: each position either as masked normally, or (differing)
    shown on both sides."""
    left, right, differ = [], [], 0
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            differ += 1
            left.append(Piece(x, True))
            right.append(Piece(y, True))
        else:
            left.append(Piece(masked_a[i], False))
            right.append(Piece(masked_b[i], False))
    return left, right, differ


def _normal_number(text: str) -> str:
    text = normalize_identifier(text or "")
    try:
        return parse_person_id(text).number
    except InvalidIdNumber:
        return text


def _digits(text: str) -> str:
    digits = "".join(ch for ch in (text or "") if ch.isdigit())
    return digits[-11:] if len(digits) > 11 else digits


def compare(row: dict, person: Person) -> list[FieldDiff]:
    out = []
    name_a, name_b = (row.get("name") or "").strip(), person.name or ""
    if name_a and name_b:
        left, right, same = _name_pieces(name_a, name_b)
        out.append(FieldDiff("name", left, right, same))
    for key, a, b, masker in (
            ("id_number", _normal_number(row.get("id_number", "")), person.id_number,
             mask_id_number),
            ("phone", _digits(row.get("phone", "")), _digits(person.phone or ""), mask_phone)):
        if not a or not b:
            continue
        if len(a) == len(b):
            left, right, differ = _number_pieces(a, b, masker(a), masker(b))
            out.append(FieldDiff(key, left, right, differ == 0,
                                 f"{differ}/{len(a)}" if differ else ""))
        else:  # different lengths (a 15-digit number that did not convert): no alignment
            out.append(FieldDiff(key, [Piece(masker(a), True)], [Piece(masker(b), True)],
                                 False, f"{len(a)}≠{len(b)}"))
    return out


def for_item(item_id: int) -> dict[str, list[FieldDiff]]:
    """person id → differences between the item's legacy row and that candidate (and
    the account it is linked to now)."""
    item = db.session.get(ReviewItem, item_id)
    account = db.session.get(LegacyAccount, item.legacy_account_id) if item else None
    if account is None:
        return {}
    try:
        row = read_row(account)
    except (ValueError, KeyError):
        return {}
    ids = [*([account.person_id] if account.person_id else []), *(item.candidates or [])]
    out = {}
    for pid in ids:
        person = db.session.get(Person, pid)
        if person is not None:
            out[pid] = compare(row, person)
    return out
