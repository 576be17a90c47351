"""The factors proven on the step-up page's own form: an SMS code, a TOTP code, the
password. Each one's ``actions`` are the form's ``action`` values it answers."""

from __future__ import annotations

from flask import request
from flask_babel import gettext as _

from .. import password, sms, totp
from .base import Goal, Outcome


class SmsCode:
    """A code sent to the registered phone (possession: one factor, ``L2``)."""

    name = "sms"
    amr = ("sms",)
    level = "L2"
    template = "step_up_sms.html"
    after_realname = True
    actions = ("sms_send", "sms_verify")

    def available_for(self, person) -> bool:
        return bool(person.phone_enc)

    def reaches(self, goal: Goal) -> bool:
        return self.available_for(goal.person) and goal.reached_with(["sms"])

    def handle(self, action: str, form, goal: Goal) -> Outcome:
        phone = goal.person.phone
        if action == "sms_send":
            result = sms.send_code(phone, "stepup", ip=request.remote_addr)
            if result.ok:
                return Outcome(notice=_("验证码已发送至 %(phone)s。", phone=result.masked_phone),
                               state={"sms_sent": True})
            # Rate-limited: a step-up code already sent is still good, so keep its field —
            # but only if there is one (right after an SMS sign-in the interval is the
            # sign-in code's, and no step-up code exists).
            return Outcome.refused(result.error, sms.message_for(result.error, result.retry_after),
                                   sms_sent=result.error == "rate_limited"
                                   and sms.has_code(phone, "stepup"))
        result = sms.verify_code(phone, "stepup", form.get("code", ""))
        if result.ok:
            return Outcome.passed(["sms"])
        return Outcome.refused(result.error, sms.message_for(result.error),
                               sms_sent=result.error == "invalid")


_TOTP_ERRORS = {
    "locked": lambda: _("错误次数过多，动态口令已暂停使用，请稍后再试或选择其他方式。"),
    "replayed": lambda: _("该动态口令已使用过，请等待下一个口令。"),
}


class TotpCode:
    """A code from an enrolled authenticator app (possession: one factor, ``L2``)."""

    name = "totp"
    amr = ("otp",)
    level = "L2"
    template = "step_up_totp.html"
    after_realname = True
    actions = ("totp",)

    def available_for(self, person) -> bool:
        return totp.has_totp(person.id)

    def reaches(self, goal: Goal) -> bool:
        return self.available_for(goal.person) and goal.reached_with(["otp"])

    def handle(self, action: str, form, goal: Goal) -> Outcome:
        result = totp.verify(goal.person.id, form.get("code", ""))
        if result.ok:
            return Outcome.passed(["otp"])
        return Outcome.refused(result.error, _TOTP_ERRORS.get(
            result.error, lambda: _("动态口令错误，请重新输入。"))())


class Password:
    """The account's password (knowledge: one factor, ``L2``). At step-up only for a
    session opened without it (an SMS sign-in): a second password proves nothing."""

    name = "password"
    amr = ("pwd",)
    level = "L2"
    template = "step_up_password.html"
    after_realname = True
    actions = ("password",)

    def available_for(self, person) -> bool:
        return bool(person.password_hash)

    def reaches(self, goal: Goal) -> bool:
        return (self.available_for(goal.person) and "pwd" not in goal.sess.amr
                and goal.reached_with(["pwd"]))

    def handle(self, action: str, form, goal: Goal) -> Outcome:
        person = goal.person
        # By the account's own ID number, so lockout counts against this account.
        result = password.authenticate(person.id_number, form.get("password", ""))
        if result.person is not None and result.person.id == person.id:
            return Outcome.passed(["pwd"])
        if result.error == "locked":
            return Outcome.refused("locked", _(
                "密码错误次数过多，已暂时锁定，请稍后再试或选择其他方式。"))
        return Outcome.refused(result.error, _("密码错误，请重新输入。"))
