"""Mask personal identifiers for display and for logs.

PIPL and GB/T 35273 require minimising the personal data we expose.  Screens
that confirm "is this you?" and log lines that help operators debug still need
*some* of an identifier, so each mask keeps just enough to recognise it:

* ID numbers keep the first 6 (the region, which is not personal on its own)
  and the last 4 characters – the convention citizens know from bank and
  government sites – hiding the birth date and sequence code.
* Phone numbers keep the first 3 (carrier prefix) and last 4 digits.
* Names keep the first character only (usually the surname).
* Credit codes keep the first 2 (authority and type: tells support staff
  whether it is an enterprise or an individual business) and the last 4.
  Credit codes identify organisations and are printed on business licences,
  but for 个体工商户 (type 92) the code is tied to a natural person, so we
  mask them like personal data rather than special-casing.

:func:`mask_text` is meant to run as a logging filter on every log record,
so it is a single precompiled regular expression pass.
"""

from __future__ import annotations

import logging
import re

_MASK = "*"

# Matching is two-stage for speed.  Stage 1 (_CANDIDATE) finds runs of at
# least 11 digits/spaces/hyphens; it starts with a character class, which
# lets the regex engine skip most of a log line cheaply, and most log lines
# have no such run at all.  Stage 2 (_PII_PATTERN) runs only on those runs
# (widened a little for a trailing "X"; a leading "+" need not be in the
# window because masking only ever replaces digits).
# Every stage-2 alternative is anchored so that it never matches inside a
# longer run of digits (order numbers, millisecond timestamps stay readable):
#   id18  - 17 digits + digit or X (resident ID, permits, foreigner ID)
#   id15  - legacy 15-digit ID
#   phone - mainland mobile, optionally with +86/0086/86 and grouped 3-4-4
#           with a consistent space or hyphen separator
_CANDIDATE = re.compile(r"[0-9][0-9 -]{9,}[0-9]")
_PII_PATTERN = re.compile(
    r"(?<![0-9])(?:"
    r"(?P<id18>[0-9]{17}[0-9Xx])(?![0-9])"
    r"|(?P<id15>[0-9]{15})(?![0-9])"
    r"|(?P<phone>(?:(?:\+|00)86[ -]?|86)?1[3-9][0-9](?P<sep>[ -]?)[0-9]{4}(?P=sep)[0-9]{4})"
    r"(?![0-9])"
    r")"
)


def mask_id_number(number: str) -> str:
    """Mask an ID-like number: ``110105********0021``.

    Numbers of 14 characters or more keep the first 6 and last 4 characters;
    shorter ones (8–13) keep a quarter at each end; anything shorter than 8
    is masked completely, since keeping 10 characters of it would reveal
    (nearly) all of it.
    """
    length = len(number)
    if length >= 14:
        head, tail = 6, 4
    elif length >= 8:
        head = tail = length // 4
    else:
        return _MASK * length
    return number[:head] + _MASK * (length - head - tail) + number[length - tail :]


def mask_phone(number: str) -> str:
    """Mask a phone number's digits 4–7: ``138****0000``.

    Works on the digits only, so separators and a country code stay in
    place (``+86 138-****-0000``): the four digits before the last four are
    replaced.  With fewer than 8 digits every digit is masked.
    """
    positions = [i for i, c in enumerate(number) if c.isdigit()]
    hidden = set(positions[-8:-4]) if len(positions) >= 8 else set(positions)
    return "".join(_MASK if i in hidden else c for i, c in enumerate(number))


def mask_name(name: str) -> str:
    """Keep the first character of a name: ``张三丰`` → ``张**``, ``张三`` → ``张*``.

    Separators inside a name (the middle dot of transliterated names, spaces)
    are kept so the masked name still reads as a name; a one-character name
    is masked completely.
    """
    if len(name) <= 1:
        return _MASK * len(name)
    rest = "".join(c if c in "·・. " else _MASK for c in name[1:])
    return name[0] + rest


def mask_credit_code(code: str) -> str:
    """Keep the first 2 and last 4 characters: ``91350100M000100Y43`` → ``91************0Y43``.

    See the module docstring for why those parts.  Codes shorter than 10
    characters (not a credit code at all) are masked completely.
    """
    length = len(code)
    if length < 10:
        return _MASK * length
    return code[:2] + _MASK * (length - 6) + code[-4:]


def _mask_match(match: re.Match[str]) -> str:
    phone = match.group("phone")
    if phone is not None:
        return mask_phone(phone)
    return mask_id_number(match.group())


def mask_text(text: str) -> str:
    """Mask every ID-number-like and mobile-number-like substring of free text.

    >>> mask_text("user 11010519491231002X phone 13800000000 ok")
    'user 110105********002X phone 138****0000 ok'
    """
    pieces: list[str] = []
    done = 0
    for candidate in _CANDIDATE.finditer(text):
        # The window reaches one character past the run for a trailing "X"
        # and one more so that the (?![0-9]) after that "X" sees the real
        # next character (endpos hides everything beyond it).  Lookbehind
        # does see characters before ``pos``.
        window_start = max(candidate.start(), done)
        window_end = candidate.end() + 2
        for match in _PII_PATTERN.finditer(text, window_start, window_end):
            pieces.append(text[done : match.start()])
            pieces.append(_mask_match(match))
            done = match.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def mask_record(record: logging.LogRecord) -> None:
    """Mask identifiers in a log record, in place, before any handler sees it.

    The message is rendered once (``msg % args``) and, if anything was masked, stored
    back with ``args`` cleared; a clean record is left as it was. A traceback is
    rendered and masked too (formatters reuse ``exc_text``). With broken format
    arguments the raw message is masked and the arguments dropped, so logging's own
    error report cannot print them in clear."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        record.msg, record.args = mask_text(str(record.msg)), None
    else:
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
