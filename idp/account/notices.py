"""The SMS notices of the account pages (password or phone changed, a closure asked for
or cancelled), sent through :mod:`idp.authn.sms_notice`
like the registration and recovery notices. Chinese only: carriers deliver templates
registered in advance."""

from __future__ import annotations

from ..authn import sms_notice

TEXTS = {
    "password_changed": "【统一身份认证平台】您的账号密码已修改，其他设备上的登录已退出。"
                        "如非本人操作，请立即找回密码或拨打政务服务热线。",
    "phone_changed_old": "【统一身份认证平台】您的账号已改绑其他手机号码，本号码不再接收该账号的"
                         "验证码。如非本人操作，请立即拨打政务服务热线或到政务服务大厅办理。",
    "phone_changed_new": "【统一身份认证平台】本号码已绑定为您的统一身份认证账号手机号码。",
    "close_requested": "【统一身份认证平台】您已申请注销账号，冷静期结束后账号将被注销。"
                       "冷静期内登录“我的账号”可撤销申请。如非本人操作，请立即修改密码。",
    "close_cancelled": "【统一身份认证平台】您的账号注销申请已撤销，账号可继续正常使用。",
}

for _what, _text in TEXTS.items():
    sms_notice.TEXTS.setdefault(_what, _text)


def tell(phone: str | None, what: str) -> bool:
    """Send the notice ``what`` to ``phone`` (nothing when the account has none)."""
    return sms_notice.send_notice(phone, what)
