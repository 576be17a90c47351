"""Masking audit details before they are hashed and stored.

An audit entry can never be corrected afterwards (that is the point of the chain), so
personal data must be masked *before* it is written — and nothing else may be altered,
or the entry no longer says what happened. So masking goes by what each field is, not
by what its digits look like. :func:`mask_details` walks any JSON-like value and:

* searches free text — fields named like ``note``, ``reason``, ``message``, ``error``
  (:data:`FREE_TEXT_KEYS`), and strings not under any key — for ID numbers and mobile
  numbers anywhere in it (:func:`idp.identity.masking.mask_text`);
* leaves every other field (ids, hashes, run ids, scopes, codes) as it is unless its
  *whole* value is an ID number or a mobile number (:func:`mask_identifier`, as for
  ``actor`` and ``subject``): a random hex ``run_id`` often holds a run of digits that
  looks like part of a phone or ID number, and masking it would corrupt the record;
  keys are treated the same way;
* masks the whole value of keys that name a personal field, whatever it looks like —
  a mistyped 17-digit ID number or a name is not found by ``mask_text``:
  names (``name``, ``full_name``, ``姓名`` …) with ``mask_name``, ID numbers and login
  names (``id_number``, ``username`` …) with ``mask_id_number``, phones with
  ``mask_phone``, credit codes with ``mask_credit_code``;
* replaces credentials (``password``, ``client_secret``, tokens …) by ``"[REDACTED]"``;
* turns the value into plain JSON: tuples and sets become lists, keys become strings,
  other objects (dates, UUIDs, Decimals, bytes) and non-finite floats become strings,
  NUL characters (which PostgreSQL cannot store) become U+FFFD.

Keys are compared case-insensitively with ``-`` and spaces read as ``_``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..identity.masking import (
    mask_credit_code,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_text,
)

REDACTED = "[REDACTED]"

_NAME_KEYS = frozenset({
    "name", "full_name", "fullname", "real_name", "realname", "given_name", "family_name",
    "middle_name", "surname", "nickname", "person_name", "legal_representative",
    "姓名", "名字", "真实姓名", "法定代表人",
})
_ID_KEYS = frozenset({
    "id_number", "idnumber", "id_no", "idno", "id_card", "idcard", "id_card_number",
    "identity_number", "certificate_number", "cert_no", "username", "user_name", "login",
    "login_name", "身份证号", "身份证号码", "证件号", "证件号码", "用户名",
})
_PHONE_KEYS = frozenset({
    "phone", "phone_number", "mobile", "mobile_number", "tel", "telephone", "msisdn",
    "手机", "手机号", "手机号码", "电话", "联系电话",
})
_CREDIT_CODE_KEYS = frozenset({
    "credit_code", "uscc", "unified_social_credit_code", "统一社会信用代码",
})
#: Fields that hold prose a person or a program wrote, where an ID number or a phone may
#: sit anywhere. ``legacy_id`` is here because older systems often used the login name
#: (a phone or an ID number, perhaps with a prefix) as the account key.
FREE_TEXT_KEYS = frozenset({
    "note", "notes", "reason", "message", "msg", "detail", "description", "error",
    "error_description", "comment", "remark", "text", "summary", "binding_message",
    "hint", "login_hint", "query", "input", "legacy_id", "user_agent",
    "备注", "原因", "说明", "描述",
})
_SECRET_KEYS = frozenset({
    "password", "passwd", "pwd", "new_password", "old_password", "secret", "client_secret",
    "token", "access_token", "refresh_token", "id_token", "logout_token",
    "authorization_code", "code_verifier", "otp", "sms_code", "totp", "private_key",
    "private_jwk", "authorization", "cookie", "set_cookie", "密码",
})


def _norm_key(key: str) -> str:
    return key.strip().lower().replace("-", "_").replace(" ", "_")


def _clean_str(value: str) -> str:
    return value.replace("\x00", "\ufffd")


def _mask_by_key(key: str, value: Any) -> Any:
    """The masked value for a key that names a personal field; ``...`` if it does not."""
    k = _norm_key(key)
    if k in _SECRET_KEYS:
        return REDACTED if value is not None else None
    kind = (mask_name if k in _NAME_KEYS else mask_id_number if k in _ID_KEYS else
            mask_phone if k in _PHONE_KEYS else mask_credit_code if k in _CREDIT_CODE_KEYS
            else None)
    if kind is None:
        return ...
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str | int):
        return kind(_clean_str(str(value).strip()))
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_by_key(key, v) for v in value]
    return mask_details(value)  # a nested object: mask it by its own keys


def mask_details(value: Any, *, free_text: bool = True) -> Any:
    """A masked, plain-JSON copy of ``value`` (see the module docstring). ``free_text``
    says whether strings here are prose (searched) or identifiers (masked only whole);
    under a key, the key decides."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            skey = mask_identifier(key if isinstance(key, str) else str(key))
            masked = _mask_by_key(skey, item)
            if masked is ...:
                masked = mask_details(item, free_text=_norm_key(skey) in FREE_TEXT_KEYS)
            out[skey] = masked
        return out
    if isinstance(value, list | tuple):
        return [mask_details(v, free_text=free_text) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((mask_details(v, free_text=free_text) for v in value), key=repr)
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    text = _clean_str(value if isinstance(value, str) else str(value))
    return mask_text(text) if free_text else mask_identifier(text)


def mask_identifier(value: str | None) -> str | None:
    """For ``actor`` and ``subject``: identifiers are kept as they are, unless the whole
    value is an ID number or a mobile number (a caller passed the login name instead of
    the person id) — then it is masked. Not ``mask_text``: a random internal id may hold
    a run of digits that looks like a phone number, and must not be altered."""
    if value is None:
        return None
    value = _clean_str(value)
    compact = re.sub(r"[\s-]", "", value)
    if _WHOLE_ID.fullmatch(compact):
        return mask_id_number(compact.upper())
    if _WHOLE_PHONE.fullmatch(compact):
        return mask_phone(value.strip())
    return value


_WHOLE_ID = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")
_WHOLE_PHONE = re.compile(r"(?:(?:\+|00)?86)?1[3-9][0-9]{9}")
