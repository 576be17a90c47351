"""找回密码: a person who forgot their password sets a new one.

* ``/recover`` — ID number, name and the registered mobile number; "获取验证码"
  (``action=send_code``) sends a code there; the code and ``new_password`` reset it.
* ``/recover/face`` — the phone is lost: ID number, name, a photo compared with the
  register's photo (the L4 face plug-in, :mod:`idp.authn.face`; real-name accounts
  only) and ``new_password``.
* At a service-hall counter, a clerk who has checked the ID card in person issues a
  one-time reset code (:mod:`.counter_reset`); the person types it at ``/recover/code``.

Same answers for unknown numbers: a code "goes out" whatever was typed — to the phone
only when ID number, name and phone are all the account's; otherwise it is a decoy
(stored, counted, never sent), so a wrong code then reads the same too. Every attempt
counts against per-address and per-number limits before anyone is looked up.

A reset (:mod:`.password_reset`) ends every session and token of the account and tells
its holder by SMS. The person then signs in with the new password.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _

from ..accounts import person_by_id_number
from ..authn import face, password_policy, realname, sms
from ..extensions import csrf
from ..identity import mask_phone
from ..models import Person
from . import counter_reset, slip_codes
from .forms import FormState, over_limit, read_id, read_name, read_phone, too_many
from .password_reset import reset_password

bp = Blueprint("recovery", __name__)

PURPOSE = "recover"
#: A photo from a phone camera; larger uploads are refused before they are read.
MAX_PHOTO = 4 * 1024 * 1024


def _account(parsed, name: str | None, phone: str | None = None) -> Person | None:
    """The active account these details all belong to, or None (no account, another
    name or phone, locked or closed): callers answer alike either way."""
    if parsed is None or not name:
        return None
    person = person_by_id_number(parsed.number)
    if person is None or person.status != "active" or not realname.same_name(person.name, name):
        return None
    if phone is not None and person.phone != phone:
        return None
    return person


def _policy(state: FormState, parsed, phone: str | None = None) -> str:
    new = request.form.get("new_password", "")
    reason = password_policy.problem(
        new, id_number=parsed.number if parsed else None, phone=phone,
        birth_date=parsed.birth_date.strftime("%Y%m%d") if parsed else None)
    if reason:
        state.fail("new_password", reason)
    return new


def _rid() -> str | None:
    # Only carried back to the sign-in page, which checks it; kept to a sane size.
    rid = request.values.get("rid")
    return rid[:64] if isinstance(rid, str) and rid.isprintable() and rid else None


def _done(rid: str | None):
    return render_template("recover_done.html", rid=rid)


@bp.route("/recover", methods=["GET", "POST"])
def page():
    rid = _rid()
    state = FormState()
    if request.method == "POST":
        done = _post(state, rid)
        if done is not None:
            return done
    return render_template("recover.html", rid=rid, state=state, face_enabled=face.enabled(),
                           min_length=current_app.config["PASSWORD_MIN_LENGTH"]), (
        400 if state.errors else 200)


def _post(state: FormState, rid: str | None):
    parsed, name, phone = read_id(state), read_name(state), read_phone(state)
    if request.form.get("action") == "send_code":
        if not state.ok:
            return None
        if over_limit("recover", parsed.number):
            return too_many()
        person = _account(parsed, name, phone)
        result = sms.send_code(phone, PURPOSE, ip=request.remote_addr,
                               deliver=person is not None, conceal=True)
        if result.ok:
            state.sent = True
            state.notice = _("如果填写的信息与账号登记的一致，验证码已发送至 %(phone)s，"
                             "%(minutes)d 分钟内有效。未收到可在 %(seconds)d 秒后重新获取。",
                             phone=mask_phone(phone),
                             minutes=max(1, current_app.config["SMS_CODE_TTL"] // 60),
                             seconds=int(current_app.config["SMS_PHONE_INTERVAL"]))
        else:
            state.fail("phone", sms.message_for(result.error, result.retry_after))
            state.sent = result.error == "rate_limited"
        return None
    new = _policy(state, parsed, phone)
    code = request.form.get("sms_code", "")
    if not code.strip():
        state.fail("sms_code", _("请先获取并填写短信验证码。"))
    if not state.ok:
        return None
    if over_limit("recover", parsed.number):
        return too_many()
    checked = sms.verify_code(phone, PURPOSE, code)
    person = _account(parsed, name, phone) if checked.ok else None
    if person is None:
        # A decoy's code is as unknown as a wrong one: the same words for both.
        state.fail("sms_code", sms.message_for(checked.error or "expired"))
        state.sent = checked.error == "invalid"
        return None
    reset_password(person, new, method="sms")
    return _done(rid)


@bp.route("/recover/face", methods=["GET", "POST"])
def by_face():
    rid = _rid()
    state = FormState()
    if not face.enabled():
        return render_template("error.html", title=_("暂不支持人脸核验"),
                               detail=_("请携带身份证件到政务服务大厅，"
                                        "由工作人员核验后重置密码。")), 404
    if request.method == "POST":
        done = _post_face(state, rid)
        if done is not None:
            return done
    return render_template("recover_face.html", rid=rid, state=state,
                           min_length=current_app.config["PASSWORD_MIN_LENGTH"]), (
        400 if state.errors else 200)


def _post_face(state: FormState, rid: str | None):
    parsed, name = read_id(state), read_name(state)
    new = _policy(state, parsed)
    upload = request.files.get("photo")
    image = b""
    if upload is None or not upload.filename:
        state.fail("photo", _("请拍摄或选择一张本人正面照片。"))
    else:
        image = upload.stream.read(MAX_PHOTO + 1)
        if len(image) > MAX_PHOTO:
            state.fail("photo", _("照片过大，请控制在 4 MB 以内。"))
        else:
            try:
                # Judged before anyone is looked up, so it is said alike for every number.
                face.inspect_image(image)
            except face.BadImage:
                state.fail("photo", _("无法识别照片，请使用 JPEG 或 PNG 格式的清晰正面照片。"))
    if not state.ok:
        return None
    if over_limit("recover", parsed.number):
        return too_many()
    person = _account(parsed, name)
    result = face.verify_person(person, image, liveness={"source": "upload"}) \
        if person is not None else None
    if result is None or not result.ok:
        state.fail("photo", _("人脸核验未通过。请确认证件号码和姓名无误后重试，"
                              "或携带身份证件到政务服务大厅办理。"))
        return None
    reset_password(person, new, method="face")
    return _done(rid)


@bp.route("/recover/code", methods=["GET", "POST"])
def by_code():
    """The reset code a hall clerk printed after checking the ID card (counter_reset)."""
    rid = _rid()
    state = FormState()
    if request.method == "POST":
        parsed, name = read_id(state), read_name(state)
        new = _policy(state, parsed)
        typed = request.form.get("reset_code", "")
        if not slip_codes.normalise(typed):
            state.fail("reset_code", _("请填写工作人员提供的重置码。"))
        if state.ok:
            if over_limit("recover", parsed.number):
                return too_many()
            person = _account(parsed, name)
            issued = counter_reset.redeem(person.id, typed) if person is not None else None
            if issued is None:
                state.fail("reset_code", _("重置码无效或已过期。请核对后重试，"
                                           "或请工作人员重新办理。"))
            else:
                reset_password(person, new, method="counter", actor=issued.get("clerk"),
                               client_id=issued.get("client_id"))
                return _done(rid)
    return render_template("recover_code.html", rid=rid, state=state,
                           min_length=current_app.config["PASSWORD_MIN_LENGTH"]), (
        400 if state.errors else 200)


bp.add_url_rule("/recover/counter", view_func=csrf.exempt(counter_reset.issue),
                methods=["POST"])
