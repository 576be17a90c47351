"""What a new password must be: long enough, of more than one kind of character, not on
the list of common passwords, and not made of the person's own ID number, birth date or
phone number.

Used wherever a person chooses a password (registration, recovery, a password change).
NIST SP 800-63B is the model: length and a deny-list matter; forced periodic changes do
not. The mixed-classes rule stays (``PASSWORD_MIN_CLASSES``) because China's graded
protection (等保 2.0) audits ask for it; set it to 1 to drop it.

``problem(password, ...)`` returns None for an acceptable password, or the reason in the
page's language — one reason, the first that applies, so the person fixes one thing.
"""

from __future__ import annotations

import os
import unicodedata
from functools import lru_cache
from importlib import resources

from flask import current_app
from flask_babel import gettext as _

#: Beyond this, a password is not being typed but pasted to make the hash work hard.
MAX_LENGTH = 256


@lru_cache(maxsize=4)
def _load(extra_path: str | None) -> frozenset[str]:
    text = resources.files(__package__).joinpath("data/common_passwords.txt").read_text("utf-8")
    if extra_path:
        with open(extra_path, encoding="utf-8") as fh:
            text += "\n" + fh.read()
    return frozenset(line.strip().casefold() for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))


def common_passwords() -> frozenset[str]:
    extra = current_app.config.get("PASSWORD_DENYLIST_FILE") or None
    return _load(os.fspath(extra) if extra else None)


def _classes(password: str) -> int:
    kinds = set()
    for ch in password:
        if ch.isdigit():
            kinds.add("digit")
        elif ch.isalpha() and ch.isascii():
            kinds.add("upper" if ch.isupper() else "lower")
        else:
            kinds.add("other")  # punctuation, spaces, Chinese characters
    return len(kinds)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").casefold()


def problem(password: str, *, id_number: str | None = None, phone: str | None = None,
            birth_date: str | None = None) -> str | None:
    """The first rule ``password`` breaks, as the person reads it; None if it passes.
    ``id_number`` and ``phone`` normalised; ``birth_date`` as YYYYMMDD."""
    cfg = current_app.config
    least = int(cfg["PASSWORD_MIN_LENGTH"])
    if not isinstance(password, str) or len(password) < least:
        return _("密码至少需要 %(n)d 位。", n=least)
    if len(password) > MAX_LENGTH:
        return _("密码不能超过 %(n)d 位。", n=MAX_LENGTH)
    if not password.isprintable():
        return _("密码不能包含换行等控制字符。")
    folded = _fold(password)
    if len(set(folded)) <= 2:
        return _("密码不能由一两个字符重复组成。")
    if folded in common_passwords() or folded.rstrip("!@#.?*") in common_passwords():
        return _("这是常见密码，很容易被猜中，请换一个。")
    kinds = int(cfg["PASSWORD_MIN_CLASSES"])
    if _classes(password) < kinds:
        return _("密码需包含至少 %(n)d 类字符（大写字母、小写字母、数字、符号）。", n=kinds)
    # What anyone who knows the person tries first: the ID number or its last six, the
    # birth date, the phone number or its last eight digits.
    own = [x for x in (id_number, (id_number or "")[-6:], birth_date, phone,
                       (phone or "")[-8:]) if x and len(x) >= 6]
    if any(_fold(x) in folded for x in own):
        return _("密码不能包含您的证件号码、出生日期或手机号码。")
    return None
