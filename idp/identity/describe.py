"""Recognise which kind of identifier a string is and describe it as JSON-ready data.

Used by the ``idp id check`` command and by support tooling, where an
operator pastes "a number" without knowing (or saying) what it is.

Recognition is by length after normalisation: 15 → legacy person ID,
9 → organisation code, 18 → person ID *or* credit code.  For 18 characters
both parsers are tried; the one that accepts wins (person ID first in the
astronomically unlikely case both do).  If neither accepts, we report the
error of the reading whose first 17 characters get further through
validation (a valid body beats a bad birth date, which beats a bad region,
which beats a bad character), so an enterprise's credit code with a typo is
not reported as "invalid ID number" and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from idp.identity.credit_code import (
    compute_credit_check_char,
    parse_credit_code,
    parse_org_code,
)
from idp.identity.errors import InvalidCreditCode, InvalidIdentifier, InvalidIdNumber
from idp.identity.normalize import normalize_identifier
from idp.identity.person_id import compute_check_char, parse_person_id

# How far validation got before failing; larger means "more plausibly this kind".
_PROGRESS = {
    "empty": 0,
    "charset": 1,
    "length": 1,
    "region": 2,
    "authority": 2,
    "org_type": 2,
    "birth_date": 3,
    "org_code_check": 3,
}
_VALID_BODY = 4


def describe(text: str) -> dict[str, Any]:
    """Detect and validate a person ID number, credit code or organisation code.

    Returns a dict of strings/booleans (dates as ISO strings) with at least
    ``kind``, ``normalised`` and ``valid: True``.  Raises
    :class:`InvalidIdNumber`, :class:`InvalidCreditCode` (or its subclass for
    organisation codes), or :class:`InvalidIdentifier` when the length fits
    no known identifier.
    """
    normalised = normalize_identifier(text)
    if not normalised:
        raise InvalidIdentifier("empty", "号码为空", "nothing to check: the input is empty")
    if len(normalised) == 15:
        return _describe_person(normalised)
    if len(normalised) == 9:
        return _describe_org_code(normalised)
    if len(normalised) == 18:
        return _describe_18(normalised)
    raise InvalidIdentifier(
        "length",
        f"无法识别：身份证号码应为 18 位（旧版 15 位），统一社会信用代码应为 18 位，"
        f"组织机构代码应为 9 位，实际为 {len(normalised)} 位",
        f"unrecognised identifier: ID numbers have 18 (legacy: 15) characters, credit codes 18,"
        f" organisation codes 9; got {len(normalised)}",
    )


def _describe_18(number: str) -> dict[str, Any]:
    try:
        return _describe_person(number)
    except InvalidIdNumber as person_error:
        try:
            return _describe_credit_code(number)
        except InvalidCreditCode as credit_error:
            raise _more_plausible(number, person_error, credit_error) from None


def _more_plausible(
    number: str, person_error: InvalidIdNumber, credit_error: InvalidCreditCode
) -> InvalidIdentifier:
    # Judge each reading by its first 17 characters with the *correct* check
    # character appended: a single wrong check character must not make a real
    # ID number look like a badly broken credit code or vice versa.
    person_progress = _body_progress(number, parse_person_id, compute_check_char)
    credit_progress = _body_progress(number, parse_credit_code, compute_credit_check_char)
    if person_progress != credit_progress:
        return person_error if person_progress > credit_progress else credit_error
    # A tie.  Only a credit code can end in a letter other than X; a leading
    # 9 is far more often an enterprise (91...) than one of the few 2023
    # foreigner cards; 1-8 start both, but citizens outnumber organisations.
    if number[17] not in "0123456789X":
        return credit_error
    return person_error if number[0] in "12345678" else credit_error


def _body_progress(
    number: str, parse: Callable[[str], object], compute: Callable[[str], str]
) -> int:
    """How far ``parse`` gets on ``number`` with its check character recomputed."""
    try:
        parse(number[:17] + compute(number[:17]))
    except InvalidIdentifier as error:
        return _PROGRESS.get(error.code, 0)
    return _VALID_BODY


def _describe_person(number: str) -> dict[str, Any]:
    person = parse_person_id(number)
    result: dict[str, Any] = {
        "kind": person.kind,
        "kind_label": person.kind_label,
        "normalised": person.number,
        "region": person.region_code,
        "province": person.province,
        "birth_date": person.birth_date.isoformat(),
        "sex": person.sex,
        "converted_from_15": person.converted_from_15,
    }
    if person.nationality_code is not None:
        result["nationality_code"] = person.nationality_code
    result["valid"] = True
    return result


def _describe_credit_code(code: str) -> dict[str, Any]:
    credit = parse_credit_code(code)
    return {
        "kind": "credit_code",
        "kind_label": "统一社会信用代码",
        "normalised": credit.code,
        "authority_code": credit.authority_code,
        "authority": credit.authority_name,
        "org_type_code": credit.org_type_code,
        "org_type": credit.org_type_name,
        "region": credit.region_code,
        "province": credit.province,
        "organisation_code": credit.organisation_code,
        "valid": True,
    }


def _describe_org_code(code: str) -> dict[str, Any]:
    org = parse_org_code(code)
    return {
        "kind": "org_code",
        "kind_label": "组织机构代码",
        "normalised": org.code,
        "organisation_code": org.formatted,
        "valid": True,
    }
