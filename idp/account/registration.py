"""个人注册: a citizen creates their own account (``/register``, linked from the login
page, and where a relying party sends ``prompt=create``).

One form: ID number, name, mobile number, SMS code, password. "获取验证码" submits it
with ``action=send_code`` (a code to the typed phone: it proves the phone, whoever holds
the number); the main button registers. The new account is ``L2`` (self-declared);
the real-name register (``REALNAME_VERIFIER``) raises it to ``L3`` on the spot when it
confirms name and number. The person is then signed in and, under ``prompt=create``,
the relying party's request resumes and it gets its code as after any sign-in.

No enumeration: every answer up to and including the final submit is the same whether
or not the number is registered. For a registered number nothing is created; the
account's holder is told by SMS that someone tried, and the browser is sent where a
new account would have gone (without a session, so the next page asks it to sign in).
What only a successful registration can show — being signed in — is all that differs,
and it costs a proved phone and counts against the per-number and per-address limits.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import accounts, audit, interaction
from ..accounts import AccountError, person_by_id_number
from ..authn import password_policy, realname, sms
from ..authn import session as sso
from ..authn.sms_notice import send_notice
from ..crypto.passwords import hash_password
from ..identity import mask_phone
from .forms import FormState, over_limit, read_id, read_name, read_phone, too_many

bp = Blueprint("registration", __name__)

PURPOSE = "register"


def is_open() -> bool:
    return bool(current_app.config.get("REGISTRATION_OPEN", True))


@bp.route("/register", methods=["GET", "POST"])
def page():
    if not is_open():
        abort(404)
    req, expired = interaction.from_page()
    if expired is not None:
        return expired
    state = FormState()
    if request.method == "POST":
        done = _post(req, state)
        if done is not None:
            return done
    elif req is not None and req.login_hint and not req.org_hint \
            and not accounts.looks_like_phone(req.login_hint):
        # The relying party's hint (an ID number it already knows) fills the field in.
        state.values["id_number"] = req.login_hint[:40]
    return render_template("register.html", rid=req.id if req else None,
                           client=req.client if req else None, state=state,
                           min_length=current_app.config["PASSWORD_MIN_LENGTH"]), (
        400 if state.errors else 200)


def _post(req, state: FormState):
    parsed, name, phone = read_id(state), read_name(state), read_phone(state)
    sending = request.form.get("action") == "send_code"
    if sending:
        # Only the phone matters for a code; the other fields are checked at the end.
        state.errors = {k: v for k, v in state.errors.items() if k == "phone"}
        if phone is None:
            return None
        if over_limit("register", parsed.number if parsed else None):
            return too_many()
        _send(phone, state)
        return None
    password = request.form.get("password", "")
    if parsed is not None and phone is not None:
        reason = password_policy.problem(password, id_number=parsed.number, phone=phone,
                                         birth_date=parsed.birth_date.strftime("%Y%m%d"))
        if reason:
            state.fail("password", reason)
    elif not password:
        state.fail("password", _("请设置密码。"))
    code = request.form.get("sms_code", "")
    if not code.strip():
        state.fail("sms_code", _("请先获取并填写短信验证码。"))
    if not state.ok:
        return None
    if over_limit("register", parsed.number):
        return too_many()
    checked = sms.verify_code(phone, PURPOSE, code)
    if not checked.ok:
        state.fail("sms_code", sms.message_for(checked.error))
        state.sent = checked.error == "invalid"
        return None
    # The phone is proved: from here on, whoever is typing holds it.
    if accounts.phone_in_use(phone):
        state.fail("phone", _("该手机号码已绑定其他账号。如是您本人的账号，请直接登录或找回密码；"
                              "也可换一个手机号码注册。"))
        return None
    return _register(req, parsed, name, phone, password, state)


def _send(phone: str, state: FormState) -> None:
    result = sms.send_code(phone, PURPOSE, ip=request.remote_addr)
    if result.ok:
        cfg = current_app.config
        state.sent = True
        state.notice = _("验证码已发送至 %(phone)s，%(minutes)d 分钟内有效。",
                         phone=mask_phone(phone), minutes=max(1, cfg["SMS_CODE_TTL"] // 60))
    else:
        state.fail("phone", sms.message_for(result.error, result.retry_after))
        state.sent = result.error == "rate_limited"


def _register(req, parsed, name: str, phone: str, password: str, state: FormState):
    cid = req.client_id if req else None
    where = req.resume_url() if req else url_for("authn.home")
    # Whoever was signed in in this browser is not the person registering now.
    old = sso.current()
    if old is not None:
        sso.end(old)
    existing = person_by_id_number(parsed.number)
    if existing is not None:
        hash_password(password)  # the time a new account's hash takes, spent alike
        send_notice(existing.phone, "register_attempt")
        audit.record("account.register_duplicate", actor="anonymous", subject=existing.id,
                     client_id=cid, details={"phone": phone})
        return redirect(where)
    try:
        person = accounts.create_person(parsed.number, name, password, phone, level="L2")
    except AccountError:
        # A race with another registration of the same number or phone: the same
        # neutral answer as above.
        return redirect(where)
    audit.record("account.registered", actor=person.id, subject=person.id, client_id=cid,
                 details={"kind": parsed.kind, "phone": phone})
    realname.verify_person(person, name, parsed.number, client_id=cid)
    sess = sso.start(person, amr=["pwd", "sms"], channel=req.channel if req else "web")
    audit.record("login.success", actor=person.id, subject=person.id, client_id=cid,
                 details={"method": "register", "amr": sess.amr, "acr": sess.acr,
                          "sid": sess.sid})
    return redirect(where)
