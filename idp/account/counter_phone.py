"""Changing the phone at a service-hall counter when the old phone is lost
(``/account/phone?counter=1`` and ``POST /account/phone/counter``).

The codes to the old and the new number (or a face match) are how the other paths prove
the person; here a clerk does, face to face with the ID card — the in-person document
check the CIBA ``in_person_check=document`` path and the counter password reset
(:mod:`.counter_reset`) trust, from the same kind of client: a hall client registered
with ``--in-person-checks``, authenticated at the backchannel endpoint's rules, its staff
id as ``acting_party`` and its limit on look-ups that name nobody.

1. The person, signed in recently (a password is enough: the second factor was the lost
   phone), asks for a counter reference on the page (``action=counter_start``). Only an
   HMAC of it is kept, with :data:`WAIT_TTL`; a new one replaces the previous one; the
   number of references a day is limited.
2. At the counter the clerk checks the ID card and sends ``login_hint`` (the number on
   the card), ``acting_party`` and ``reference`` to ``POST /account/phone/counter``. A
   reference is good for its own account only, a few wrong tries kill it, and once
   vouched for it cannot be vouched for again. The vouch lasts :data:`VOUCH_TTL`.
3. Back on the page (the counter's kiosk or the person's own device, signed in recently
   again if need be), the new number is proved by an SMS code (bound to the session; a
   number of another account gets a decoy, as on the other paths) and the change is
   applied: the vouch is used up at that moment (a replay finds nothing), the change is
   audited with the clerk as ``act`` (numbers masked), the old number (where it still
   works) and the new one are told, and — the old phone being in unknown hands — every
   other session ends and the refresh tokens not issued in this one are revoked, as on
   the face-match path.
"""

from __future__ import annotations

import time

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, UnauthorizedClientError
from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit, ratelimit
from ..accounts import phone_in_use
from ..authn import assurance, sms
from ..authn import session as sso
from ..channels import ciba
from ..extensions import csrf, db
from ..identity import InvalidPhone, mask_phone, normalize_phone
from ..identity.masking import mask_name
from ..store import store
from ..ui import local_time
from . import notices, recent, slip_codes
from .views import bp

PAGE = "/account/phone?counter=1"
#: How long a reference waits for the counter (a day: the hall may be visited tomorrow).
WAIT_TTL = 86400
#: How long a clerk's check stands for finishing the change on the page.
VOUCH_TTL = 1800
MAX_TRIES = 5
#: References one account may ask for a day.
DAILY_REFERENCES = 5
LENGTH = 8  # 40 bits, and a few tries only
PURPOSE = "phone_new"


class BadReferenceError(OAuth2Error):
    error = "invalid_grant"
    status_code = 400

    def __init__(self):
        super().__init__("The reference is unknown, expired, already used or belongs to "
                         "another person.")



def _key(person_id: str) -> str:
    return f"phonectr:{slip_codes.mac('phonectr-person', person_id)[:32]}"



def _shown(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def _record(person_id: str) -> dict | None:
    record = store().get(_key(person_id))
    if not isinstance(record, dict) or float(record.get("until", 0)) <= time.time():
        return None
    return record


def vouched(person_id: str) -> dict | None:
    """The clerk's standing check for this person, or None."""
    record = _record(person_id)
    return record if record is not None and record.get("state") == "vouched" else None


def start(person_id: str, sid: str) -> str:
    """A new reference for the person (any earlier one, vouched or not, is replaced)."""
    code = slip_codes.new_code(LENGTH)
    until = time.time() + WAIT_TTL
    store().set(_key(person_id), {"state": "waiting",
                                  "mac": slip_codes.mac("phonectr", person_id, code),
                                  "until": until, "sid": sid}, WAIT_TTL)
    store().delete(f"{_key(person_id)}:tries")
    audit.record("account.phone_counter_started", actor=person_id, subject=person_id,
                 details={"sid": sid, "expires_in": WAIT_TTL})
    return _shown(code)


def vouch(person_id: str, typed: str, *, clerk: str, client_id: str) -> bool:
    """Mark the person's waiting reference ``typed`` as checked in person by ``clerk``."""
    key = _key(person_id)
    record = _record(person_id)
    if record is None or record.get("state") != "waiting":
        return False
    # Only the caller that takes the waiting record vouches (two clerks at once: one).
    taken = slip_codes.take(key, record, typed, "phonectr", person_id, length=LENGTH,
                            ttl=WAIT_TTL, max_tries=MAX_TRIES)
    if taken is None:
        return False
    until = time.time() + VOUCH_TTL
    store().set(key, {**taken, "state": "vouched", "clerk": clerk, "client_id": client_id,
                      "vouched_at": time.time(), "until": until}, VOUCH_TTL)
    return True


def _use_up(person_id: str, record: dict) -> bool:
    """Take the vouch for the change being applied: one change per check."""
    taken = store().take(_key(person_id))
    return isinstance(taken, dict) and taken.get("state") == "vouched" \
        and taken.get("mac") == record.get("mac")


# -- the counter's side ----------------------------------------------------------------


def counter():
    """``POST /account/phone/counter`` (client-authenticated hall application):
    ``login_hint`` (the ID number on the card), ``acting_party`` (the clerk's staff id),
    ``reference`` (what the person shows). ``{"status": "verified", "expires_in"}``;
    errors as the backchannel endpoint's, ``invalid_grant`` for a bad reference."""
    srv = current_app.extensions["idp.oauth"]
    req = srv.create_oauth2_request(None)
    try:
        client = ciba._authenticate(req)
        if not ciba._may_check_in_person(client):
            raise UnauthorizedClientError("The client is not permitted to vouch for "
                                          "in-person document checks.")
        clerk = ciba._acting_party(ciba._param(req, "acting_party"))
        typed = ciba._param(req, "reference")
        if not typed or len(typed) > 32:
            raise InvalidRequestError("The 'reference' parameter (shown on the person's "
                                      "phone-change page) is required.")
        slot = ciba._take_hint_slot(client)
        person = ciba._find_person(ciba._param(req, "login_hint") or "")
        ciba._count_hit(slot)
        if not vouch(person.id, typed, clerk=clerk, client_id=client.client_id):
            audit.record("account.phone_counter_refused", actor=clerk, subject=person.id,
                         client_id=client.client_id,
                         details={"act": {"sub": clerk, "client_id": client.client_id}})
            raise BadReferenceError()
    except OAuth2Error as err:
        return ciba._error(req, err)
    audit.record("account.phone_counter_vouched", actor=clerk, subject=person.id,
                 client_id=client.client_id,
                 details={"act": {"sub": clerk, "client_id": client.client_id},
                          "expires_in": VOUCH_TTL})
    resp = jsonify(status="verified", expires_in=VOUCH_TTL)
    resp.headers["Cache-Control"] = "no-store"
    return resp


bp.add_url_rule("/phone/counter", "phone_counter_vouch", view_func=csrf.exempt(counter),
                methods=["POST"])


# -- the person's side ----------------------------------------------------------------


def _gate():
    # A recent sign-in, a password being enough: the clerk's check replaces the factor
    # the lost phone used to give.
    return recent.gate(PAGE, "phone_counter", "L2", own_level=False)


def _page(sess, *, reference: str | None = None, new_phone: str = "", sent: bool = False,
          notice: str | None = None, errors: dict | None = None, status: int = 200):
    person = sess.person
    record = _record(person.id)
    state = record.get("state") if record else None
    return render_template(
        "account/phone_counter.html", who=mask_name(person.name),
        old=mask_phone(person.phone) if person.phone else None, state=state,
        reference=reference, until=local_time(record["until"]) if record else None,
        wait_hours=WAIT_TTL // 3600, vouch_minutes=VOUCH_TTL // 60,
        new_phone=new_phone, sent=sent, notice=notice, errors=errors or {},
        code_minutes=max(1, int(current_app.config["SMS_CODE_TTL"]) // 60)), status


def page():
    refused = _gate()
    if refused is not None:
        return refused
    return _page(sso.current())


def post():
    refused = _gate()
    if refused is not None:
        return refused
    sess = sso.current()
    person = sess.person
    action = request.form.get("action")
    if action == "counter_start":
        if ratelimit.exceeded("phone-counter", DAILY_REFERENCES, 86400, value=person.id):
            return _page(sess, status=429, errors={"reference": _(
                "今天获取办理码的次数过多，请明天再试，或直接到政务服务大厅窗口办理。")})
        return _page(sess, reference=start(person.id, sess.sid))
    record = vouched(person.id)
    if record is None:
        return _page(sess, status=400, errors={"reference": _(
            "尚未完成柜台核验，或核验已过期。请先到政务服务大厅窗口出示办理码和身份证件。")})
    typed = request.form.get("phone", "").strip()
    try:
        new = normalize_phone(typed)
    except InvalidPhone:
        return _page(sess, new_phone=typed[:32], status=400,
                     errors={"phone": sms.message_for("invalid_phone")})
    if new == person.phone:
        return _page(sess, new_phone=typed, status=400,
                     errors={"phone": _("新号码与当前绑定的号码相同。")})
    if action == "send_code":
        # A number held by another account gets a decoy: the same answer, nothing sent.
        result = sms.send_code(new, PURPOSE, ip=request.remote_addr,
                               deliver=not phone_in_use(new), conceal=True, bound_to=sess.sid)
        if not result.ok:
            return _page(sess, new_phone=typed,
                         status=429 if result.error == "rate_limited" else 400,
                         errors={"phone": sms.message_for(result.error, result.retry_after)})
        return _page(sess, new_phone=typed, sent=True,
                     notice=_("验证码已发送至新号码 %(new)s。", new=result.masked_phone))
    checked = sms.verify_code(new, PURPOSE, request.form.get("sms_code", ""), bound_to=sess.sid)
    if not checked.ok:
        audit.record("account.phone_change_failed", actor=person.id, subject=person.id,
                     details={"new": checked.error, "lost": True, "method": "counter"})
        return _page(sess, new_phone=typed, sent=True, status=400,
                     errors={"sms_code": sms.message_for(checked.error)})
    if phone_in_use(new) or not _use_up(person.id, record):
        # Taken meanwhile (no code could have reached a taken number), or the check was
        # used by a change made a moment ago: nothing changes.
        return _page(sess, new_phone=typed, status=400,
                     errors={"sms_code": sms.message_for("expired")})
    old = person.phone
    person.phone = new
    db.session.commit()
    act = {"sub": record.get("clerk"), "client_id": record.get("client_id")}
    audit.record("account.phone_changed", actor=person.id, subject=person.id,
                 client_id=record.get("client_id"),
                 details={"sid": sess.sid, "old_proved": False, "method": "counter",
                          "act": act, "acr": sess.acr, "amr": assurance.public_amr(sess.amr),
                          "old": mask_phone(old) if old else None, "new": mask_phone(new)})
    from .sessions import end_other_sessions

    end_other_sessions(sess, "phone_changed")
    notices.tell(old, "phone_changed_old")
    notices.tell(new, "phone_changed_new")
    return redirect(url_for("account.index", done="phone"))
