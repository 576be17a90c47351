"""Normalise mainland China mobile numbers.

SMS one-time codes and account recovery are keyed on the phone number, so
``138 0000 0000``, ``+86-138-0000-0000`` and ``１３８００００００００`` must all
become the same stored value: the bare 11-digit national number.  Only
mainland mobile numbers are accepted (11 digits, ``1`` then ``3``–``9``);
landlines and foreign numbers cannot receive our SMS and are rejected early
with a precise reason.
"""

from __future__ import annotations

from idp.identity.errors import InvalidPhone, describe_char
from idp.identity.normalize import normalize_identifier

_DIGITS = frozenset("0123456789")
_SECOND_DIGITS = frozenset("3456789")
#: Country-code prefixes people type: the international form with a plus sign
#: and with the international dialling prefix 00.  A bare ``86`` is also
#: accepted, but only when followed by exactly 11 digits, which is never
#: ambiguous because a national mobile number always starts with 1.
_EXPLICIT_PREFIXES = ("+86", "0086")


def normalize_phone(text: str) -> str:
    """Return the 11-digit national form of a mainland mobile number.

    >>> normalize_phone("+86 138-0000-0000")
    '13800000000'

    Raises :class:`InvalidPhone` with ``code`` ``empty``, ``charset``,
    ``length`` or ``prefix``.
    """
    number = normalize_identifier(text)
    if not number:
        raise InvalidPhone("empty", "手机号码为空", "the phone number is empty")
    number = _strip_country_code(number)
    for char in number:
        if char not in _DIGITS:
            shown = describe_char(char)
            raise InvalidPhone(
                "charset",
                f"手机号码中的字符“{shown}”无效，只能包含数字",
                f"invalid character '{shown}' in the phone number: only digits are allowed",
            )
    if len(number) != 11:
        raise InvalidPhone(
            "length",
            f"长度错误：手机号码应为 11 位，实际为 {len(number)} 位",
            f"wrong length: a mobile number has 11 digits, got {len(number)}",
        )
    if number[0] != "1" or number[1] not in _SECOND_DIGITS:
        raise InvalidPhone(
            "prefix",
            "号段错误：中国大陆手机号码以 13–19 开头",
            "not a mainland mobile number: it must start with 13-19",
        )
    return number


def _strip_country_code(number: str) -> str:
    for prefix in _EXPLICIT_PREFIXES:
        if number.startswith(prefix):
            # Unambiguous: strip even if the rest has the wrong length, so that
            # the length error describes the national part the user typed.
            return number[len(prefix) :]
    if number.startswith("+"):
        raise InvalidPhone(
            "prefix",
            "只支持中国大陆手机号码（国家码 +86）",
            "only mainland China mobile numbers (country code +86) are supported",
        )
    if number.startswith("86") and len(number) == 13:
        return number[2:]
    return number


def is_valid_phone(text: str) -> bool:
    """``True`` if :func:`normalize_phone` accepts ``text``."""
    try:
        normalize_phone(text)
    except InvalidPhone:
        return False
    return True
