"""Step-up: raise a signed-in session to the assurance level an authorization asks for.

``/authorize`` sends the browser here when the session's ``acr`` is below the lowest
level in ``acr_values``. This page offers the authenticators that can reach that level
for this person; when none can, it says so and lets the person go back, and the
authorization ends with ``unmet_authentication_requirements``.

What is offered follows from ``assurance.session_level`` (the lower of the account's
level and what the session's authenticators prove):

1. an account below ``L3`` asked for ``L3`` or ``L4`` first verifies its real name
   against the register (``realname``), which raises the account, then adds a second
   factor (``L3``) or a face match (``L4``);
2. an SMS code to the registered phone (amr ``sms``);
3. a TOTP code, if an authenticator app is enrolled (amr ``otp``);
4. the password, if this session was opened without one (an SMS sign-in);
5. a passkey, through ``step_up_passkey.html`` (the WebAuthn module's own endpoint);
6. a face match against the register's ID-card photo (``face``, ``/login/step-up/face``):
   for an ``L3`` account asked for ``L4``, it raises the account to ``L4`` and adds amr
   ``face``, which is what lets the session reach ``L4``;
7. a digital certificate (``/login/cert?step_up=1``, :mod:`idp.authn.cert_login`) when
   ``L4`` or ``L5`` is asked: it proves the real name by itself (no register check
   first), raises the account to ``L5`` and adds amr ``sc``.

Each is offered only if, added to what the session already holds, it reaches the level.
``L4`` otherwise needs an ``L4`` account and an ``L4`` passkey, a kiosk chip read or a
counter.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit
from ..identity.masking import mask_phone
from ..interaction import load as load_request
from . import assurance, cert_login, face, password, realname, sms, totp
from . import session as sso
from .webauthn_views import passkey_reaches

bp = Blueprint("stepup", __name__)


def _expired():
    return render_template("error.html", title=_("授权请求已过期"),
                           detail=_("请回到原网站重新点击登录。")), 400


def _options(person, sess, asked: str) -> dict:
    """Which authenticators can take this session to ``asked``."""
    realname_needed = (assurance.rank(asked) >= assurance.rank("L3")
                       and assurance.rank(person.assurance_level) < assurance.rank("L3"))
    account = "L3" if realname_needed else person.assurance_level

    def reaches(amr: list[str], level: str = account) -> bool:
        return assurance.meets(assurance.session_level(level, [*sess.amr, *amr]), asked)

    opts = {
        "sms": bool(person.phone_enc) and reaches(["sms"]),
        "totp": totp.has_totp(person.id) and reaches(["otp"]),
        "password": bool(person.password_hash) and "pwd" not in sess.amr and reaches(["pwd"]),
        "passkey": passkey_reaches(sess, account, asked),
        # A match compares with the register's photo of a verified number (so L3 first),
        # and raises the account to L4 as it succeeds.
        "face": (face.enabled() and assurance.rank(account) >= assurance.rank("L3")
                 and reaches(["face"], "L4")),
    }
    others = any(opts.values())
    opts["cert"] = cert_login.offered(asked)
    opts["any"] = others or opts["cert"]
    opts["realname"] = realname_needed and others
    return opts


_REALNAME_ERRORS = {
    "invalid_number": lambda: _("证件号码格式不正确，请核对后重新输入。"),
    "not_own": lambda: _("姓名或证件号码与本账号登记的信息不一致。"),
    "mismatch": lambda: _("实名核验未通过：姓名与证件号码不匹配。"),
    "not_in_register": lambda: _("实名核验未通过：未在人口信息库中查到该证件号码，"
                                 "请到政务服务大厅窗口办理。"),
    "too_many": lambda: _("今日实名核验次数已用完，请明天再试或到政务服务大厅窗口办理。"),
    "unavailable": lambda: _("实名核验服务暂时不可用，请稍后再试。"),
}

_TOTP_ERRORS = {
    "locked": lambda: _("错误次数过多，动态口令已暂停使用，请稍后再试或选择其他方式。"),
    "replayed": lambda: _("该动态口令已使用过，请等待下一个口令。"),
}


@bp.route("/login/step-up", methods=["GET", "POST"])
def page():
    req = load_request(request.values.get("rid"))
    sess = sso.current()
    if req is None or sess is None:
        return _expired()
    rid, client, asked = req.id, req.client, req.asked_level
    cid = client.client_id if client else None
    action = request.form.get("action") if request.method == "POST" else None
    if action == "give_up":
        req.unmet = True
        req.save()
        audit.record("stepup.unmet", actor=sess.person_id, subject=sess.person_id,
                     client_id=cid, details={"asked": asked, "reached": sess.acr})
        return redirect(req.resume_url())
    if assurance.meets(sess.acr, asked):
        return redirect(req.resume_url())

    person = sess.person
    opts = _options(person, sess, asked)
    view = {"error": None, "notice": None, "sms_sent": False}

    def failed(method: str, reason: str | None, message: str):
        audit.record("stepup.failure", actor=person.id, subject=person.id, client_id=cid,
                     details={"method": method, "reason": reason, "asked": asked})
        view["error"] = message

    def passed(amr: list[str]):
        before = sess.acr
        after = sso.elevate(sess, amr)
        audit.record("stepup.success", actor=person.id, subject=person.id, client_id=cid,
                     details={"from": before, "to": after, "amr": amr, "sid": sess.sid})
        if assurance.meets(after, asked):
            return redirect(req.resume_url())
        view["notice"] = _("验证已通过，但还未达到所需的认证等级，请继续。")
        return None

    factor = action in ("sms_send", "sms_verify", "totp", "password")
    if factor and not opts.get({"sms_send": "sms", "sms_verify": "sms"}.get(action, action)):
        view["error"] = _("该验证方式在此不可用。")
    elif factor and opts["realname"]:
        view["error"] = _("请先完成实名核验。")
    elif action == "realname" and opts["realname"]:
        result = realname.verify_person(person, request.form.get("name", ""),
                                        request.form.get("id_number", ""), client_id=cid)
        if result.ok:
            view["notice"] = _("实名核验已通过。请再完成一项验证。")
        else:
            view["error"] = _REALNAME_ERRORS.get(result.reason, _REALNAME_ERRORS["unavailable"])()
        opts = _options(person, sess, asked)
    elif action == "sms_send":
        result = sms.send_code(person.phone, "stepup", ip=request.remote_addr)
        if result.ok:
            view["sms_sent"] = True
            view["notice"] = _("验证码已发送至 %(phone)s。", phone=result.masked_phone)
        else:
            failed("sms", result.error, sms.message_for(result.error, result.retry_after))
            view["sms_sent"] = result.error == "rate_limited"
    elif action == "sms_verify":
        result = sms.verify_code(person.phone, "stepup", request.form.get("code", ""))
        if result.ok:
            done = passed(["sms"])
            if done is not None:
                return done
        else:
            failed("sms", result.error, sms.message_for(result.error))
            view["sms_sent"] = result.error == "invalid"
    elif action == "totp":
        result = totp.verify(person.id, request.form.get("code", ""))
        if result.ok:
            done = passed(["otp"])
            if done is not None:
                return done
        else:
            failed("otp", result.error, _TOTP_ERRORS.get(
                result.error, lambda: _("动态口令错误，请重新输入。"))())
    elif action == "password":
        result = password.authenticate(person.id_number, request.form.get("password", ""))
        if result.person is not None and result.person.id == person.id:
            done = passed(["pwd"])
            if done is not None:
                return done
        elif result.error == "locked":
            failed("pwd", "locked", _("密码错误次数过多，已暂时锁定，请稍后再试或选择其他方式。"))
        else:
            failed("pwd", result.error, _("密码错误，请重新输入。"))
    status = 400 if view["error"] else 200
    return render_template("step_up.html", rid=rid, client=client, asked=asked,
                           reached=sess.acr, opts=opts,
                           masked_phone=mask_phone(person.phone) if person.phone_enc else None,
                           **view), status


# -- face match ----------------------------------------------------------------------

_FACE_ERRORS = {
    # reason: (HTTP status, message)
    "bad_image": (400, lambda: _(
        "照片无法使用：请上传 JPEG 或 PNG 格式、不小于 %(side)d×%(side)d 像素、不超过 %(mb)d MB "
        "的正面照片。", side=int(current_app.config["FACE_IMAGE_MIN_SIDE"]),
        mb=max(1, int(current_app.config["FACE_IMAGE_MAX_BYTES"]) // (1024 * 1024)))),
    "mismatch": (403, lambda: _("人脸比对未通过：照片与身份证登记照片不一致。"
                                "请摘下帽子和眼镜，正对摄像头，在光线充足处重试。")),
    "no_liveness": (403, lambda: _("活体检测未通过，请按提示重新拍摄。")),
    "realname_required": (403, lambda: _("请先完成实名核验。")),
    "not_offered": (403, lambda: _("该验证方式在此不可用。")),
    "too_many": (429, lambda: _("今日人脸识别次数已用完，请明天再试，"
                                "或前往自助终端、政务服务大厅办理。")),
    "unavailable": (503, lambda: _("人脸比对服务暂时不可用，请稍后再试。")),
    "request_expired": (400, lambda: _("授权请求已过期，请回到原网站重新点击登录。")),
}


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _liveness() -> dict | None:
    """What the capture page reports about the capture (camera or file, size); a capture
    SDK's liveness result in deployments that have one. Passed to the verifier as is."""
    raw = request.form.get("liveness") or ""
    if not raw or len(raw) > 4096:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _upload() -> bytes:
    f = request.files.get("image")
    if f is None:
        return b""
    # One byte past the limit is enough to refuse it as too large.
    return f.read(int(current_app.config["FACE_IMAGE_MAX_BYTES"]) + 1)


@bp.route("/login/step-up/face", methods=["GET", "POST"])
def face_page():
    """The capture page (GET) and the comparison (POST: multipart ``rid``, ``image``,
    optional ``liveness`` JSON). The page's script posts with ``Accept:
    application/json`` and the CSRF token in ``X-CSRFToken``, and gets ``{ok, redirect}``
    or ``{error, message}``; the plain upload form (no script) gets a redirect or the
    page again with the message."""
    req = load_request(request.values.get("rid"))
    sess = sso.current()
    if req is None or sess is None:
        if request.method == "POST" and _wants_json():
            return _face_error("request_expired")
        return _expired()
    rid, client, asked = req.id, req.client, req.asked_level
    cid = client.client_id if client else None
    if assurance.meets(sess.acr, asked):
        return _face_done(req.resume_url(), sess.acr)
    person = sess.person
    opts = _options(person, sess, asked)
    if request.method == "GET":
        if not opts["face"] or opts["realname"]:
            return redirect(url_for("stepup.page", rid=rid))
        return render_template("step_up_face.html", rid=rid, client=client, asked=asked,
                               reached=sess.acr, error=None)
    if not opts["face"]:
        return _face_error("not_offered", rid=rid, client=client, asked=asked, sess=sess)
    if opts["realname"]:
        return _face_error("realname_required", rid=rid, client=client, asked=asked,
                           sess=sess)
    result = face.verify_person(person, _upload(), liveness=_liveness(), client_id=cid)
    if not result.ok:
        return _face_error(result.reason or "mismatch", rid=rid, client=client, asked=asked,
                           sess=sess)
    before = sess.acr
    after = sso.elevate(sess, ["face"])
    audit.record("stepup.success", actor=person.id, subject=person.id, client_id=cid,
                 details={"method": "face", "from": before, "to": after, "amr": ["face"],
                          "score": result.score, "asked": asked, "sid": sess.sid})
    if not assurance.meets(after, asked):
        # Not expected (a match raises the account to L4), but never claim what is not so.
        return _face_error("not_offered", rid=rid, client=client, asked=asked, sess=sess)
    return _face_done(req.resume_url(), after)


def _face_done(url: str, acr: str | None):
    if request.method == "POST" and _wants_json():
        return jsonify(ok=True, acr=acr, redirect=url)
    return redirect(url)


def _face_error(reason: str, *, rid=None, client=None, asked=None, sess=None):
    status, message = _FACE_ERRORS.get(reason, _FACE_ERRORS["unavailable"])
    if _wants_json() or sess is None:
        return jsonify(error=reason, message=message()), status
    return render_template("step_up_face.html", rid=rid, client=client, asked=asked,
                           reached=sess.acr, error=message()), status
