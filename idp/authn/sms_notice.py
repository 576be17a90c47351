"""SMS notices: a message that tells the account holder something happened (someone
tried to register with their number, their password was reset). No code, nothing to
type back; the same gateway as the codes (:mod:`.sms_gateways`), with ``purpose``
``notice_<what>`` so a gateway with fixed templates picks the right one.

A notice that cannot be sent is logged (masked) and never fails the action it reports:
a password reset stands even when the carrier is down.
"""

from __future__ import annotations

import logging

from ..identity import InvalidPhone, mask_phone, normalize_phone
from .sms_gateways import GatewayError, SmsMessage, gateway

log = logging.getLogger(__name__)

# Chinese only, whatever the page language: carriers deliver only templates registered
# in advance, and those are registered in Chinese (as the codes' texts in .sms).
TEXTS = {
    "register_attempt": "【统一身份认证平台】有人尝试使用您的证件号码注册新账号。您已有账号，"
                        "无需重新注册；如忘记密码，请在登录页点击“忘记密码”。如非本人操作，请忽略。",
    "password_reset": "【统一身份认证平台】您的账号密码已重置，所有设备上的登录已退出。"
                      "如非本人操作，请立即拨打政务服务热线或到政务服务大厅办理。",
}


def send_notice(phone: str | None, what: str) -> bool:
    """Send the notice ``what`` (a key of :data:`TEXTS`) to ``phone``; True if the
    gateway took it."""
    if not phone:
        return False
    try:
        phone = normalize_phone(phone)
    except InvalidPhone:
        return False
    message = SmsMessage(phone=phone, text=TEXTS[what], purpose=f"notice_{what}", code="",
                         ttl_minutes=0)
    try:
        gateway().send(message)
    except GatewayError as exc:
        log.warning("SMS notice %s to %s not sent: %s", what, mask_phone(phone), exc)
        return False
    return True
