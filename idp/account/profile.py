"""Changing one's password and phone number (``/account/password``, ``/account/phone``).

Both need a recent sign-in at the account's level (:mod:`idp.account.recent`), on the
page and again on the POST that changes anything. A new password is checked against
the same policy as registration (:mod:`idp.authn.password_policy`); the change ends the
person's other sessions (their relying parties told by back-channel logout) and the
refresh tokens those sessions hold, and the account's phone is told by SMS.

A new phone is proved by a code sent to it, and the old one (when still in use) by a
code sent to that: a stolen session, even recent, cannot move the account to the
thief's phone. When the old phone is lost, the step-up must reach ``L4`` (a face match
against the register photo) instead, or a clerk checks the person at a hall counter
(:mod:`.counter_phone`); either way the other sessions then end and the refresh tokens
not issued in this one are revoked (the lost phone may still be signed in). The new
number's code is sent whether or not the number belongs to another account — to such
a number nothing is delivered (a decoy), so the page never tells which numbers are
registered.
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit
from ..accounts import phone_in_use
from ..authn import assurance, password_policy, sms
from ..authn import session as sso
from ..crypto.passwords import hash_password
from ..extensions import db
from ..identity import InvalidPhone, mask_phone, normalize_phone
from ..identity.masking import mask_name
from . import counter_phone, notices, recent
from .sessions import end_other_sessions
from .views import bp

PASSWORD = "/account/password"
PHONE = "/account/phone"
PHONE_LOST = "/account/phone?lost=1"
# The level that replaces the old phone's code when that phone is lost: a face match.
LOST_PHONE_LEVEL = "L4"


def _sess() -> sso.SSOSession:
    return sso.current()


# -- password -------------------------------------------------------------------------


def _password_page(errors: dict | None = None, status: int = 200):
    sess = _sess()
    return render_template("account/password.html", who=mask_name(sess.person.name),
                           errors=errors or {}), status


@bp.get("/password")
def password_page():
    refused = recent.gate(PASSWORD, "password")
    if refused is not None:
        return refused
    return _password_page()


@bp.post("/password")
def password_change():
    refused = recent.gate(PASSWORD, "password")
    if refused is not None:
        return refused
    sess = _sess()
    person = sess.person
    new = request.form.get("new_password", "")
    again = request.form.get("new_password_again", "")
    problem = password_policy.problem(new, id_number=person.id_number, phone=person.phone,
                                      birth_date=_birth_date(person.id_number))
    if problem:
        return _password_page({"new_password": problem}, 400)
    if new != again:
        return _password_page({"new_password_again": _("两次输入的新密码不一致。")}, 400)
    person.password_hash = hash_password(new)
    db.session.commit()
    audit.record("account.password_changed", actor=person.id, subject=person.id,
                 details={"sid": sess.sid, "acr": sess.acr})
    end_other_sessions(sess, "password_changed")
    notices.tell(person.phone, "password_changed")
    return redirect(url_for("account.index", done="password"))


def _birth_date(number: str) -> str | None:
    return number[6:14] if len(number) == 18 and number[6:14].isdigit() else None


# -- phone ---------------------------------------------------------------------------


def _lost() -> bool:
    return request.values.get("lost") == "1"


def _phone_gate():
    if not _lost():
        return recent.gate(PHONE, "phone")
    return recent.gate(PHONE_LOST, "phone_lost", LOST_PHONE_LEVEL)


def _phone_page(*, new_phone: str = "", sent: str | None = None, errors: dict | None = None,
                notice: str | None = None, status: int = 200):
    sess = _sess()
    person = sess.person
    return render_template(
        "account/phone.html", who=mask_name(person.name), lost=_lost(),
        old=mask_phone(person.phone) if person.phone else None, new_phone=new_phone,
        sent=sent, errors=errors or {}, notice=notice,
        code_minutes=max(1, int(current_app.config["SMS_CODE_TTL"]) // 60)), status


def _counter() -> bool:
    return request.values.get("counter") == "1"


@bp.get("/phone")
def phone_page():
    if _counter():
        return counter_phone.page()
    refused = _phone_gate()
    if refused is not None:
        return refused
    return _phone_page()


@bp.post("/phone")
def phone_change():
    if _counter():
        return counter_phone.post()
    refused = _phone_gate()
    if refused is not None:
        return refused
    sess = _sess()
    person = sess.person
    typed = request.form.get("phone", "").strip()
    try:
        new = normalize_phone(typed)
    except InvalidPhone:
        return _phone_page(new_phone=typed[:32], status=400,
                           errors={"phone": sms.message_for("invalid_phone")})
    if new == person.phone:
        return _phone_page(new_phone=typed, status=400,
                           errors={"phone": _("新号码与当前绑定的号码相同。")})
    use_old = bool(person.phone) and not _lost()
    if request.form.get("action") == "send_code":
        return _send_codes(sess, new, typed, use_old)
    errors = {}
    checked = sms.verify_code(new, "phone_new", request.form.get("sms_code", ""),
                              bound_to=sess.sid)
    if not checked.ok:
        errors["sms_code"] = sms.message_for(checked.error)
    if use_old:
        old_checked = sms.verify_code(person.phone, "phone_old",
                                      request.form.get("old_sms_code", ""), bound_to=sess.sid)
        if not old_checked.ok:
            errors["old_sms_code"] = sms.message_for(old_checked.error)
    if errors:
        audit.record("account.phone_change_failed", actor=person.id, subject=person.id,
                     details={"new": checked.error, "lost": not use_old})
        return _phone_page(new_phone=typed, sent="yes", errors=errors, status=400)
    if phone_in_use(new):  # taken meanwhile: no code could have reached a taken number
        return _phone_page(new_phone=typed, errors={"sms_code": sms.message_for("expired")},
                           status=400)
    old = person.phone
    person.phone = new
    db.session.commit()
    audit.record("account.phone_changed", actor=person.id, subject=person.id,
                 details={"sid": sess.sid, "old_proved": use_old, "acr": sess.acr,
                          "amr": assurance.public_amr(sess.amr)})
    if not use_old:
        # The old phone is in unknown hands: what it may still be signed in to ends.
        end_other_sessions(sess, "phone_changed")
    notices.tell(old, "phone_changed_old")
    notices.tell(new, "phone_changed_new")
    return redirect(url_for("account.index", done="phone"))


def _send_codes(sess: sso.SSOSession, new: str, typed: str, use_old: bool):
    ip = request.remote_addr
    # A number held by another account gets a decoy: the same answer, nothing sent.
    sent = sms.send_code(new, "phone_new", ip=ip, deliver=not phone_in_use(new),
                         conceal=True, bound_to=sess.sid)
    if not sent.ok:
        return _phone_page(new_phone=typed, status=429 if sent.error == "rate_limited" else 400,
                           errors={"phone": sms.message_for(sent.error, sent.retry_after)})
    if use_old:
        old_sent = sms.send_code(sess.person.phone, "phone_old", ip=ip, bound_to=sess.sid)
        if not old_sent.ok:
            return _phone_page(new_phone=typed, sent="new",
                               status=429 if old_sent.error == "rate_limited" else 400,
                               errors={"old_sms_code": sms.message_for(old_sent.error,
                                                                       old_sent.retry_after)})
    notice = (_("验证码已分别发送至新号码 %(new)s 和原号码 %(old)s。", new=sent.masked_phone,
                old=mask_phone(sess.person.phone)) if use_old
              else _("验证码已发送至新号码 %(new)s。", new=sent.masked_phone))
    return _phone_page(new_phone=typed, sent="yes", notice=notice)
