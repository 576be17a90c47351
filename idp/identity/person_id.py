"""Parse and validate personal identity numbers (GB 11643-1999 and relatives).

The provider keys natural persons on this number, so a typo here creates a
second account for the same citizen.  We therefore validate everything the
number itself can tell us and report the first problem precisely.

Three kinds of 18-character numbers share the GB 11643 layout and the
ISO 7064 MOD 11-2 check character:

``resident``
    公民身份号码.  Positions 1–6 address code (first two digits: province-level
    code 11–15, 21–23, 31–37, 41–46, 50–54, 61–65 or 71), 7–14 birth date
    YYYYMMDD, 15–17 sequence code (odd = male, even = female), 18 check
    character (0–9 or X = 10).  Legacy 15-digit numbers (address code,
    YYMMDD in the 1900s, sequence code, no check character) are accepted and
    converted to 18 characters.

``hmt_permit``
    港澳台居民居住证 (2018): the same layout, but the address code is the
    fixed value 810000 (Hong Kong), 820000 (Macao) or 830000 (Taiwan).

``foreigner_permanent``
    2023 外国人永久居留身份证 (issued from 2023-12-01 by the National
    Immigration Administration).  What we check, per the NIA's published
    machine-readable rules: 18 characters; position 1 is ``9`` (the
    foreigner marker, distinct from the 1–8 a citizen's province code
    starts with); positions 2–3 are the province-level code of the issuing
    place and must be a mainland province; positions 4–6 are a numeric
    nationality code, which we only require to be digits (we ship no country
    table, so a non-existent country code is *not* detected); positions
    7–14 are the birth date; 15–17 the sequence code, read for sex the same
    way as for citizens; position 18 is a MOD 11-2 check character computed
    exactly as for citizens.  The older 15-character 2017 card (three Latin
    letters + 12 digits) is not accepted here.

Checks common to all kinds: birth date must exist, must not be before
1900-01-01 and not after today.  We deliberately do **not** check the
county part of the address code (see :mod:`idp.identity.regions`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

# python-stdnum's RIC module computes the MOD 11-2 check character correctly,
# so we use it for that.  We do not use ``ric.validate``: it looks the full
# six-digit address code up in a county table keyed on the birth year and so
# rejects real numbers whose county was later re-coded; it also knows nothing
# about residence permits, foreigner cards or 15-digit numbers, and only
# raises generic errors.  Everything else in this module fills those gaps.
from stdnum.cn import ric

from idp.identity.errors import InvalidIdNumber, describe_char
from idp.identity.normalize import normalize_identifier
from idp.identity.regions import HMT_PERMIT_PREFIXES, MAINLAND_PROVINCES, RESIDENT_PROVINCES

PersonIdKind = Literal["resident", "hmt_permit", "foreigner_permanent"]
Sex = Literal["M", "F"]

KIND_LABELS: dict[str, str] = {
    "resident": "居民身份证",
    "hmt_permit": "港澳台居民居住证",
    "foreigner_permanent": "外国人永久居留身份证",
}

_DIGITS = frozenset("0123456789")
_EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)
_FOREIGNER_MARKER = "9"


@dataclass(frozen=True, slots=True)
class PersonId:
    """A validated person identity number.

    ``number`` is always the canonical 18-character form (upper-case X).
    For ``foreigner_permanent`` numbers, ``region_code`` is the issuing
    province's code padded to six digits (``"110000"``), because the number
    only carries the province, and ``nationality_code`` holds positions 4–6.
    """

    kind: PersonIdKind
    number: str
    region_code: str
    province: str
    birth_date: dt.date
    sex: Sex
    converted_from_15: bool = False
    nationality_code: str | None = None

    @property
    def kind_label(self) -> str:
        """Chinese name of the document kind, for display."""
        return KIND_LABELS[self.kind]


def compute_check_char(first17: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character (``0``–``9`` or ``X``) for 17 digits.

    >>> compute_check_char("11010519491231002")
    'X'
    """
    if len(first17) != 17:
        raise InvalidIdNumber(
            "length",
            f"长度错误：计算校验码需要 17 位数字，实际为 {len(first17)} 位",
            f"wrong length: the check character is computed over 17 digits, got {len(first17)}",
        )
    _require_digits(first17)
    # ric.calc_check_digit() expects the full number and ignores its last
    # character, so append a placeholder.
    return ric.calc_check_digit(first17 + "X")


def parse_person_id(text: str, *, today: dt.date | None = None) -> PersonId:
    """Validate ``text`` as an 18- or 15-character person ID number and decode it.

    ``today`` (default: the local date) bounds the birth date; tests pass it
    explicitly.  Raises :class:`InvalidIdNumber` with ``code`` one of
    ``empty``, ``charset``, ``length``, ``region``, ``birth_date``,
    ``check_digit`` (checked in that order).
    """
    number = normalize_identifier(text)
    if not number:
        raise InvalidIdNumber("empty", "号码为空", "the ID number is empty")
    _check_charset(number)
    if len(number) == 15:
        return _parse_15(number, today)
    if len(number) != 18:
        raise InvalidIdNumber(
            "length",
            f"长度错误：身份证号码应为 18 位（旧版为 15 位），实际为 {len(number)} 位",
            f"wrong length: an ID number has 18 characters (15 for legacy numbers),"
            f" got {len(number)}",
        )
    return _parse_18(number, today, converted_from_15=False)


def convert_15_to_18(text: str, *, today: dt.date | None = None) -> str:
    """Validate a legacy 15-digit number and return its 18-character form.

    The century is always 19 (15-digit numbers were issued 1984–2004 to people
    born in the 1900s), and the check character is computed.
    """
    number = normalize_identifier(text)
    if len(number) != 15:
        raise InvalidIdNumber(
            "length",
            f"长度错误：旧版身份证号码应为 15 位，实际为 {len(number)} 位",
            f"wrong length: a legacy ID number has 15 digits, got {len(number)}",
        )
    return parse_person_id(number, today=today).number


def is_valid(text: str, *, today: dt.date | None = None) -> bool:
    """``True`` if :func:`parse_person_id` accepts ``text``."""
    try:
        parse_person_id(text, today=today)
    except InvalidIdNumber:
        return False
    return True


def _require_digits(text: str) -> None:
    for index, char in enumerate(text):
        if char not in _DIGITS:
            raise _charset_error(char, index + 1)


def _charset_error(char: str, position: int) -> InvalidIdNumber:
    shown = describe_char(char)
    return InvalidIdNumber(
        "charset",
        f"第 {position} 位字符“{shown}”无效：身份证号码只能包含数字，最后一位可以是 X",
        f"invalid character '{shown}' at position {position}: only digits are allowed,"
        f" and X as the last character",
        position=position,
    )


def _check_charset(number: str) -> None:
    last = len(number) - 1
    for index, char in enumerate(number):
        if char in _DIGITS or (char == "X" and index == last):
            continue
        raise _charset_error(char, index + 1)


def _parse_15(number: str, today: dt.date | None) -> PersonId:
    if number[-1] == "X":
        raise InvalidIdNumber(
            "charset",
            "第 15 位字符“X”无效：旧版 15 位号码没有校验码，只能由数字组成",
            "invalid character 'X' at position 15: legacy 15-digit numbers have no"
            " check character and contain digits only",
            position=15,
        )
    # 15-digit numbers predate residence permits and foreigner cards, so only
    # resident province codes are possible here.
    _resident_province(number[:2])
    first17 = number[:6] + "19" + number[6:]
    return _parse_18(first17 + compute_check_char(first17), today, converted_from_15=True)


def _resident_province(code2: str) -> str:
    province = RESIDENT_PROVINCES.get(code2)
    if province is not None:
        return province
    if code2 in ("81", "82", "83"):
        raise InvalidIdNumber(
            "region",
            f"地址码错误：以 {code2} 开头的只能是港澳台居民居住证号码，前六位应为 {code2}0000",
            f"invalid address code: numbers starting with {code2} are Hong Kong/Macao/Taiwan"
            f" residence permits and must start with {code2}0000",
        )
    raise InvalidIdNumber(
        "region",
        f"地址码错误：前两位“{code2}”不是有效的省级行政区划代码",
        f"invalid address code: '{code2}' is not a province-level region code",
    )


def _parse_18(number: str, today: dt.date | None, *, converted_from_15: bool) -> PersonId:
    kind: PersonIdKind
    nationality_code: str | None = None
    if number[0] == _FOREIGNER_MARKER:
        kind = "foreigner_permanent"
        code2 = number[1:3]
        maybe_province = MAINLAND_PROVINCES.get(code2)
        if maybe_province is None:
            raise InvalidIdNumber(
                "region",
                f"受理地代码错误：外国人永久居留身份证第 2–3 位“{code2}”不是有效的省级行政区划代码",
                f"invalid issuing-place code: positions 2-3 of a foreigner's permanent"
                f" residence ID ('{code2}') are not a province-level region code",
            )
        province = maybe_province
        region_code = code2 + "0000"
        nationality_code = number[3:6]
    elif number[:6] in HMT_PERMIT_PREFIXES:
        kind = "hmt_permit"
        region_code = number[:6]
        province = HMT_PERMIT_PREFIXES[region_code]
    else:
        kind = "resident"
        region_code = number[:6]
        province = _resident_province(number[:2])

    birth_date = _birth_date(number[6:14], today)

    expected = compute_check_char(number[:17])
    if number[17] != expected:
        raise InvalidIdNumber(
            "check_digit",
            f"校验码错误：最后一位应为 {expected}",
            f"check character should be '{expected}'",
            expected=expected,
            position=18,
        )

    return PersonId(
        kind=kind,
        number=number,
        region_code=region_code,
        province=province,
        birth_date=birth_date,
        sex="M" if int(number[16]) % 2 else "F",
        converted_from_15=converted_from_15,
        nationality_code=nationality_code,
    )


def _birth_date(yyyymmdd: str, today: dt.date | None) -> dt.date:
    # The messages name the faulty part but never echo the date itself:
    # errors are logged and a birth date is personal data.
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])
    if year < _EARLIEST_BIRTH_DATE.year:
        raise InvalidIdNumber(
            "birth_date",
            "出生日期无效：早于 1900 年",
            "invalid birth date: before 1900",
        )
    if not 1 <= month <= 12:
        raise InvalidIdNumber(
            "birth_date",
            "出生日期无效：月份应为 01–12",
            "invalid birth date: the month must be 01-12",
        )
    try:
        birth_date = dt.date(year, month, day)
    except ValueError:
        raise InvalidIdNumber(
            "birth_date",
            f"出生日期无效：该月没有 {day:02d} 日",
            f"invalid birth date: day {day:02d} does not exist in that month",
        ) from None
    if birth_date > (today or dt.date.today()):
        raise InvalidIdNumber(
            "birth_date",
            "出生日期无效：晚于今天",
            "invalid birth date: in the future",
        )
    return birth_date
