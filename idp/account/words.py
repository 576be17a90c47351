"""One vocabulary for what the pages show people: assurance levels explained in words,
channels, sign-in methods, audit events and roles — never a raw code (``pwd``,
``hall``, ``all``) on a page. The home page, the account pages, the enterprise picker
and the hall demo all name things through here."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

LEVELS = {
    "L1": _l("L1 · 匿名"),
    "L2": _l("L2 · 基本（手机号已验证）"),
    "L3": _l("L3 · 实名（已与人口库核验）"),
    "L4": _l("L4 · 实人（已人脸比对）"),
    "L5": _l("L5 · 现场核验或数字证书"),
}

CHANNELS = {
    "web": _l("网站"), "app": _l("手机应用"), "kiosk": _l("自助终端"),
    "hall": _l("政务服务大厅窗口"), "hotline": _l("政务服务热线"), "qr": _l("扫码登录"),
    "device": _l("扫码登录（设备码）"),
}

METHODS = {
    "pwd": _l("密码"), "sms": _l("短信验证码"), "otp": _l("动态口令"),
    "hwk": _l("通行密钥"), "swk": _l("通行密钥"), "face": _l("人脸识别"),
    "idcard": _l("身份证读卡"), "qr": _l("扫码"), "fed": _l("其他平台账号"),
    "counter": _l("窗口现场核验"), "sc": _l("数字证书"), "cert": _l("数字证书"),
    "mfa": _l("多因素"), "user": _l("本人确认"),
}

EVENTS = {
    "login.success": _l("登录"), "stepup.success": _l("补充验证"),
    "stepup.failure": _l("补充验证未通过"), "logout": _l("退出登录"),
    "consent.granted": _l("同意授权"), "consent.denied": _l("拒绝授权"),
    "account.password_changed": _l("修改密码"), "account.phone_changed": _l("更换手机号码"),
    "account.app_revoked": _l("取消应用授权"), "account.close_requested": _l("申请注销账号"),
    "account.close_cancelled": _l("撤销注销申请"), "totp.enrolled": _l("添加动态口令"),
    "totp.removed": _l("删除动态口令"), "webauthn.registered": _l("添加通行密钥"),
    "webauthn.removed": _l("删除通行密钥"), "qr.scanned": _l("扫码确认"),
    "approval.decided": _l("手机应用确认"), "ciba.decided": _l("窗口或热线办理确认"),
    "device.approved": _l("设备码登录确认"), "assurance.raised": _l("认证等级提升"),
    "account.phone_counter_vouched": _l("大厅窗口当面核验（更换手机号码）"),
}

# Audit events the person's own history lists (their subject is the person).
HISTORY_EVENTS = tuple(EVENTS)
FAILURES = {"stepup.failure", "consent.denied"}


def level(code: str | None) -> str:
    return str(LEVELS.get(code or "", code or "—"))


def meaning(code: str | None) -> str:
    """What a level means, without its code (for pages that show the code already)."""
    return level(code).partition(" · ")[2]


def channel(code: str | None) -> str:
    return str(CHANNELS.get(code or "web", CHANNELS["web"]))


def methods(amr) -> str:
    seen: list[str] = []
    for code in amr or []:
        name = METHODS.get(code)
        if name is not None and str(name) not in seen:
            seen.append(str(name))
    from flask_babel import get_locale

    sep = ", " if str(get_locale()) == "en" else "、"
    return sep.join(seen) if seen else "—"


def event(code: str) -> str:
    return str(EVENTS.get(code, code))
