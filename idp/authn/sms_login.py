"""Sign-in with an SMS code to the account's registered phone (amr ``sms``, level L2).

The page answers the same whether or not the number is registered — a code goes out
only to registered numbers, an unregistered one gets a decoy code that is stored but never
sent, and the send limits are charged either way — so neither the answer to "send", its
timing, nor what a wrong code then says can be used to find out who has an account.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit, interaction
from ..accounts import person_by_phone
from ..identity import InvalidPhone, mask_phone, normalize_phone
from ..models import Person
from . import session as sso
from . import sms

bp = Blueprint("smslogin", __name__)


def _person_by_phone(phone: str) -> Person | None:
    person = person_by_phone(phone)
    return person if person is not None and person.status == "active" else None


@bp.route("/login/sms", methods=["GET", "POST"])
def page():
    req, expired = interaction.from_page()
    if expired is not None:
        return expired
    client = req.client if req else None
    view = {"error": None, "notice": None, "sent": False, "phone": ""}
    if request.method == "POST":
        typed = request.form.get("phone", "")
        try:
            phone = normalize_phone(typed)
        except InvalidPhone as exc:
            view["error"] = exc.message
            phone = None
        if phone is not None:
            view["phone"] = phone
            if request.form.get("action") == "verify":
                done = _verify(phone, request.form.get("code", ""), req, view)
                if done is not None:
                    return done
            else:
                _send(phone, view)
        else:
            view["phone"] = typed[:40]
    return render_template("login_sms.html", rid=req.id if req else None, client=client,
                           **view), (
        400 if view["error"] else 200)


def _send(phone: str, view: dict) -> None:
    person = _person_by_phone(phone)
    # An unregistered number gets a decoy code that is never sent: the limits, the time
    # taken and what a wrong code then says are the same as for a registered one.
    # A message the gateway refuses ends like a decoy too (conceal): "could not send"
    # could only ever be said of a registered number. The citizen whose code did not
    # come is told, as everyone is, that they may ask again after the interval.
    result = sms.send_code(phone, "login", ip=request.remote_addr, deliver=person is not None,
                           conceal=True)
    if result.undelivered and person is not None:
        audit.record("sms.undelivered", actor="anonymous", subject=person.id,
                     details={"purpose": "login", "phone": phone,
                              "reason": result.undelivered})
    if result.ok:
        cfg = current_app.config
        view["sent"] = True
        view["notice"] = " ".join((
            _("如果该号码已在本平台注册，验证码已发送至 %(phone)s，"
              "%(minutes)d 分钟内有效。", phone=mask_phone(phone),
              minutes=max(1, cfg["SMS_CODE_TTL"] // 60)),
            _("如未收到短信，可在 %(seconds)d 秒后重新发送，或使用证件号码和密码登录。",
              seconds=int(cfg["SMS_PHONE_INTERVAL"]))))
    else:
        view["error"] = sms.message_for(result.error, result.retry_after)
        view["sent"] = result.error == "rate_limited"


def _verify(phone: str, code: str, req, view: dict):
    cid = req.client_id if req else None
    result = sms.verify_code(phone, "login", code)
    person = _person_by_phone(phone) if result.ok else None
    if person is None:
        audit.record("login.failure", actor="anonymous", client_id=cid,
                     details={"method": "sms", "reason": result.error or "no_account",
                              "phone": phone})
        view["error"] = sms.message_for(result.error or "expired")
        view["sent"] = result.error == "invalid"
        return None
    sess = sso.start(person, amr=["sms"], channel=req.channel if req else "web")
    audit.record("login.success", actor=person.id, subject=person.id, client_id=cid,
                 details={"method": "sms", "amr": sess.amr, "acr": sess.acr, "sid": sess.sid})
    return redirect(req.resume_url() if req else url_for("authn.home"))
