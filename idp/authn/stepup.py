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

The page names none of them: each is an authenticator in :mod:`idp.authn.factors`
that says whether it reaches the goal (``StepUp.reaches``) and which partial template
offers it; a POSTed ``action`` goes to the authenticator that owns it
(``FormStepUp.handle``), the real-name step (1) being a step of its own
(:mod:`idp.authn.factors.realname_first`).
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit
from ..identity.masking import mask_phone
from ..interaction import load as load_request
from . import assurance, face, factors
from . import session as sso
from .factors import Goal, Offer, Outcome, realname_first

bp = Blueprint("stepup", __name__)


def _expired():
    from ..interaction import expired_page

    return expired_page()


def _client_id(req) -> str | None:
    return req.client.client_id if req.client else None


@bp.route("/login/step-up", methods=["GET", "POST"])
def page():
    req = load_request(request.values.get("rid"))
    sess = sso.current()
    if req is None or sess is None:
        return _expired()
    action = request.form.get("action") if request.method == "POST" else None
    if action == "give_up":
        return _give_up(req, sess)
    if assurance.meets(sess.acr, req.asked_level):
        return redirect(req.resume_url())
    goal = Goal(sess.person, sess, req.asked_level)
    offer = factors.offer(goal)
    outcome = _act(action, offer, req) if action else Outcome()
    if outcome.amr:
        if _elevate(req, goal, outcome.amr):
            return redirect(req.resume_url())
        outcome.notice = _("验证已通过，但还未达到所需的认证等级，请继续。")
    if action == realname_first.ACTION:
        # The account's level may have changed, and with it what is offered.
        offer = factors.offer(Goal(sess.person, sess, req.asked_level))
    return _render(req, sess, offer, outcome)


def _give_up(req, sess):
    req.unmet = True
    req.save()
    audit.record("stepup.unmet", actor=sess.person_id, subject=sess.person_id,
                 client_id=_client_id(req), details={"asked": req.asked_level,
                                                   "reached": sess.acr})
    return redirect(req.resume_url())


def _act(action: str, offer: Offer, req) -> Outcome:
    """The POSTed ``action``, handed to the step that owns it."""
    goal = offer.goal
    owner = factors.owner_of(action)
    if owner is None:
        if action == realname_first.ACTION and offer.realname:
            return realname_first.handle(request.form, goal, _client_id(req))
        return Outcome()  # nothing of ours: the page as it is
    if owner.name not in offer:
        return Outcome(error=_("该验证方式在此不可用。"))
    if offer.realname:
        return Outcome(error=_("请先完成实名核验。"))
    outcome = owner.handle(action, request.form, goal)
    if outcome.failed:
        audit.record("stepup.failure", actor=goal.person.id, subject=goal.person.id,
                     client_id=_client_id(req),
                     details={"method": owner.amr[0], "reason": outcome.reason,
                              "asked": goal.asked})
    return outcome


def _elevate(req, goal: Goal, amr: list[str]) -> bool:
    """Add what was proven to the session; whether it now reaches the level asked."""
    sess = goal.sess
    before = sess.acr
    after = sso.elevate(sess, amr)
    audit.record("stepup.success", actor=goal.person.id, subject=goal.person.id,
                 client_id=_client_id(req),
                 details={"from": before, "to": after, "amr": amr, "sid": sess.sid})
    return assurance.meets(after, goal.asked)


def _render(req, sess, offer: Offer, outcome: Outcome):
    person = offer.goal.person
    view = {"sms_sent": False, **outcome.state}
    return render_template(
        "step_up.html", rid=req.id, client=req.client, asked=req.asked_level,
        reached=sess.acr, opts=offer.flags(), offered=offer.shown,
        masked_phone=mask_phone(person.phone) if person.phone_enc else None,
        error=outcome.error, notice=outcome.notice, **view), 400 if outcome.error else 200


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
    offer = factors.offer(Goal(person, sess, asked))
    if request.method == "GET":
        if "face" not in offer or offer.realname:
            return redirect(url_for("stepup.page", rid=rid))
        return render_template("step_up_face.html", rid=rid, client=client, asked=asked,
                               reached=sess.acr, error=None)
    if "face" not in offer:
        return _face_error("not_offered", rid=rid, client=client, asked=asked, sess=sess)
    if offer.realname:
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
