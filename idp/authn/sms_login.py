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
from ..extensions import db
from ..identity import InvalidPhone, mask_phone, normalize_phone
from ..models import Person, phone_index
from . import session as sso
from . import sms

bp = Blueprint("smslogin", __name__)


def _person_by_phone(phone: str) -> Person | None:
    person = db.session.scalar(db.select(Person).where(Person.phone_idx == phone_index(phone)))
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
    result = sms.send_code(phone, "login", ip=request.remote_addr, deliver=person is not None)
    if result.ok:
        view["sent"] = True
        view["notice"] = _("如果该号码已在本平台注册，验证码已发送至 %(phone)s，"
                           "%(minutes)d 分钟内有效。", phone=mask_phone(phone),
                           minutes=max(1, current_app.config["SMS_CODE_TTL"] // 60))
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
