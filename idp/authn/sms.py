"""SMS one-time codes: six digits, short-lived, single use, few tries, rate-limited.

    result = send_code("13800138000", "login", ip=request.remote_addr)
    ...
    verify_code("13800138000", "login", "123456").ok

Everything lives in the shared store, so limits and codes hold across workers: a code
record per (phone, purpose) holding only an HMAC of the code; a try counter per code;
fixed-window send counters per phone and per client address. Store keys name the phone
by a keyed hash, so a Redis dump lists no phone numbers. A new code for the same phone
and purpose replaces the previous one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _

from ..identity import InvalidPhone, mask_phone, normalize_phone
from ..ratelimit import address_bucket
from ..store import store
from .sms_gateways import GatewayError, SmsMessage, gateway

log = logging.getLogger(__name__)

HOUR = 3600


@dataclass
class SendResult:
    ok: bool
    # None, or: invalid_phone, rate_limited, gateway_error
    error: str | None = None
    retry_after: int | None = None  # seconds, with rate_limited
    masked_phone: str | None = None
    # With conceal=True: ok, but the gateway refused the message (its reason, safe to
    # log), so the person got no code. Never shown to the person.
    undelivered: str | None = None


@dataclass
class VerifyResult:
    ok: bool
    # None, or: invalid (wrong code), expired (none issued, used or out of time),
    # too_many (this code is dead after too many wrong tries), invalid_phone
    error: str | None = None
    tries_left: int | None = None


def _now() -> float:
    return time.time()


def _mac(*parts: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def _phone_key(phone: str) -> str:
    return _mac("sms-phone", phone)[:32]


def _code_key(phone: str, purpose: str, bound_to: str | None = None) -> str:
    # ``bound_to`` keeps codes for one request apart from another's for the same phone
    # (two hotline agents on one citizen): neither send replaces the other's code.
    tail = f":{_mac('sms-bound', bound_to)[:32]}" if bound_to else ""
    return f"sms:code:{purpose}:{_phone_key(phone)}{tail}"


def check_rate(phone: str, ip: str | None) -> SendResult | None:
    """Count one send request for ``phone`` (normalised) and ``ip``; a refusal, or None
    when it may go ahead. Charged for decoys too, so a refusal tells nobody whether a
    number is registered."""
    cfg = current_app.config
    masked = mask_phone(phone)
    if ip:
        bucket = address_bucket(ip)
        if store().incr(f"sms:ip:{_mac('sms-ip', bucket)[:32]}", HOUR) > cfg["SMS_IP_HOURLY"]:
            return SendResult(False, "rate_limited", HOUR, masked)
    pk = _phone_key(phone)
    interval = cfg["SMS_PHONE_INTERVAL"]
    now = _now()
    if not store().add(f"sms:gap:{pk}", now, interval):
        last = store().get(f"sms:gap:{pk}")
        wait = int(interval - (now - float(last))) + 1 if last is not None else 1
        return SendResult(False, "rate_limited", max(1, min(wait, interval)), masked)
    if store().incr(f"sms:hour:{pk}", HOUR) > cfg["SMS_PHONE_HOURLY"]:
        return SendResult(False, "rate_limited", HOUR, masked)
    return None


def _release_gap(phone: str) -> None:
    """A send that failed should not make the person wait out the interval."""
    store().delete(f"sms:gap:{_phone_key(phone)}")


def _text(code: str, purpose: str, minutes: int) -> str:
    # Chinese only, whatever the page language: carriers deliver only templates
    # registered in advance, and those are registered in Chinese.
    what = {"login": "登录", "stepup": "身份核验", "ciba": "授权确认"}.get(purpose, "身份核验")
    return (f"【统一身份认证平台】您的{what}验证码为 {code}，{minutes} 分钟内有效。"
            "请勿告诉他人，工作人员不会向您索要验证码。")


_LATENCY_KEY = "sms:gateway_seconds"
_LATENCY_CAP = 5.0


def _note_latency(seconds: float) -> None:
    # A moving average, shared by workers, of how long the gateway takes to accept.
    last = store().get(_LATENCY_KEY)
    avg = seconds if last is None else 0.8 * float(last) + 0.2 * seconds
    store().set(_LATENCY_KEY, avg, 24 * HOUR)


def _pretend_to_send(already: float = 0.0) -> None:
    """Take about as long as a real send (``already`` seconds of it spent), so the
    answer's timing does not tell a registered number from an unregistered one."""
    last = store().get(_LATENCY_KEY)
    if last is not None:
        time.sleep(max(0.0, min(float(last), _LATENCY_CAP) - already))


def send_code(phone: str, purpose: str, *, ip: str | None, deliver: bool = True,
              conceal: bool = False, bound_to: str | None = None) -> SendResult:
    """Make a fresh code for (phone, purpose), store its HMAC and send it.

    ``deliver=False`` makes a decoy: everything happens (limits, a stored code, the
    time a send takes) except the message, so a page that must not reveal whether a
    number is registered answers and verifies alike for both. Such a page also passes
    ``conceal=True``: a message the gateway refuses then ends like a decoy (code kept,
    interval started, the usual time taken) and the result is ok with ``undelivered``
    set, since only a registered number ever reaches the gateway and a different
    answer would name it."""
    try:
        phone = normalize_phone(phone)
    except InvalidPhone:
        return SendResult(False, "invalid_phone")
    refused = check_rate(phone, ip)
    if refused is not None:
        log.info("SMS send refused for %s: rate limited", mask_phone(phone))
        return refused
    cfg = current_app.config
    ttl = int(cfg["SMS_CODE_TTL"])
    code = f"{secrets.randbelow(10 ** 6):06d}"
    cid = secrets.token_hex(8)
    record = {"cid": cid, "mac": _mac("sms-code", purpose, phone, cid, code), "exp": _now() + ttl}
    key = _code_key(phone, purpose, bound_to)
    store().set(key, record, ttl)
    minutes = max(1, ttl // 60)
    masked = mask_phone(phone)
    if not deliver:
        _pretend_to_send()
        return SendResult(True, masked_phone=masked)
    started = time.monotonic()
    try:
        gateway().send(SmsMessage(phone=phone, text=_text(code, purpose, minutes),
                                  purpose=purpose, code=code, ttl_minutes=minutes))
    except GatewayError as exc:
        took = time.monotonic() - started
        log.warning("SMS to %s not sent: %s", masked, exc)
        if conceal:
            _pretend_to_send(already=took)
            # Failures count towards the gateway's usual time too: in an outage where
            # sends time out, decoys then take as long as the registered numbers' sends.
            _note_latency(took)
            return SendResult(True, masked_phone=masked, undelivered=str(exc))
        _note_latency(took)
        store().delete(key)
        _release_gap(phone)
        return SendResult(False, "gateway_error", masked_phone=masked)
    _note_latency(time.monotonic() - started)
    return SendResult(True, masked_phone=masked)


def verify_code(phone: str, purpose: str, code: str, *,
                bound_to: str | None = None) -> VerifyResult:
    """Check a code; a right one is used up at once, and too many wrong ones kill it."""
    try:
        phone = normalize_phone(phone)
    except InvalidPhone:
        return VerifyResult(False, "invalid_phone")
    key = _code_key(phone, purpose, bound_to)
    record = store().get(key)
    if record is None:
        return VerifyResult(False, "expired")
    if _now() > float(record["exp"]):
        store().delete(key)
        return VerifyResult(False, "expired")
    limit = int(current_app.config["SMS_CODE_MAX_TRIES"])
    ttl = max(1.0, float(record["exp"]) - _now())
    tries = store().incr(f"sms:tries:{record['cid']}", ttl)
    if tries > limit:
        store().delete(key)
        return VerifyResult(False, "too_many", 0)
    typed = "".join((code or "").split())
    expected = record["mac"]
    if len(typed) == 6 and typed.isdigit() and hmac.compare_digest(
            expected, _mac("sms-code", purpose, phone, record["cid"], typed)):
        # take() is atomic: of two workers checking the same right code, one wins.
        taken = store().take(key)
        if taken is None or taken.get("cid") != record["cid"]:
            return VerifyResult(False, "expired")
        return VerifyResult(True)
    if tries >= limit:
        store().delete(key)
        return VerifyResult(False, "too_many", 0)
    return VerifyResult(False, "invalid", limit - tries)


def has_code(phone: str, purpose: str, *, bound_to: str | None = None) -> bool:
    """Whether a code for (phone, purpose) is live: a page shows the code field only then
    (a send refused for the interval after another purpose's code sent nothing)."""
    try:
        phone = normalize_phone(phone)
    except InvalidPhone:
        return False
    record = store().get(_code_key(phone, purpose, bound_to))
    return record is not None and _now() <= float(record["exp"])


def message_for(error: str | None, retry_after: int | None = None) -> str:
    """What to tell the person, for a SendResult or VerifyResult error."""
    if error == "rate_limited":
        if retry_after and retry_after < 120:
            return _("发送过于频繁，请 %(seconds)d 秒后再试。", seconds=retry_after)
        return _("验证码发送次数过多，请稍后再试。")
    if error == "gateway_error":
        return _("短信暂时无法发送，请稍后再试或选择其他方式。")
    if error == "invalid_phone":
        return _("请输入正确的中国大陆手机号码。")
    if error == "too_many":
        return _("验证码错误次数过多，该验证码已失效，请重新获取。")
    if error == "expired":
        return _("验证码已失效，请重新获取。")
    return _("验证码错误，请重新输入。")
