"""What the registration and recovery forms share: reading and checking the ID number,
name and phone fields, the per-address and per-number limits, and the page state
(each error tied to its field, so a screen reader reads it with the field).

Both forms are plain HTML posts (no JavaScript needed) carrying the app-wide CSRF token;
the field names are part of the automation contract (README): ``id_number``, ``name``,
``phone``, ``sms_code``, ``password`` / ``new_password``, ``action=send_code``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from flask import current_app, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import ratelimit
from ..identity import InvalidIdNumber, InvalidPhone, normalize_phone, parse_person_id
from ..identity.person_id import PersonId

MAX_NAME = 64
HOUR, DAY = 3600, 86400


@dataclass
class FormState:
    """What the page shows: the values typed back (never the password or code), an
    error per field, a notice (role=status) and whether a code was sent."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None
    sent: bool = False

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    @property
    def ok(self) -> bool:
        return not self.errors


def _typed(name: str, limit: int = 64) -> str:
    value = request.form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def read_id(state: FormState) -> PersonId | None:
    """The ID number in any written form (15 digits, lower-case x, full-width digits,
    permits, foreigners' permanent residence IDs), or None with the reason explained
    (the check digit it should have ended with, as at sign-in)."""
    typed = _typed("id_number")
    state.values["id_number"] = typed
    try:
        parsed = parse_person_id(typed)
    except InvalidIdNumber as exc:
        en = str(get_locale()) == "en"
        state.fail("id_number", exc.message_en if en else exc.message)
        return None
    return parsed


def read_name(state: FormState) -> str | None:
    typed = unicodedata.normalize("NFC", _typed("name", 200)).strip()
    state.values["name"] = typed[:MAX_NAME]
    if not typed:
        state.fail("name", _("请填写姓名（与证件上一致）。"))
    elif len(typed) > MAX_NAME or not typed.isprintable():
        state.fail("name", _("姓名格式不正确，请与证件上的姓名一致。"))
    else:
        return typed
    return None


def read_phone(state: FormState) -> str | None:
    typed = _typed("phone", 40)
    state.values["phone"] = typed
    try:
        return normalize_phone(typed)
    except InvalidPhone as exc:
        state.fail("phone", exc.message if str(get_locale()) != "en" else exc.message_en)
        return None


def over_limit(kind: str, number: str | None) -> bool:
    """Count one attempt of ``kind`` (``register`` or ``recover``) from this address
    and, when known, for this ID number; True when either is over its limit. Counted
    before anyone is looked up, so a refusal says nothing about the number."""
    cfg = current_app.config
    prefix = kind.upper()
    if ratelimit.exceeded(kind, int(cfg[f"{prefix}_ADDRESS_HOURLY"]), HOUR):
        return True
    return number is not None and ratelimit.exceeded(
        f"{kind}-number", int(cfg[f"{prefix}_NUMBER_DAILY"]), DAY, value=number)


def too_many():
    return render_template("error.html", title=_("尝试次数过多"),
                           detail=_("为保护账号安全，请稍后再试，或到政务服务大厅办理。")), 429
