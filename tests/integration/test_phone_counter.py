"""Changing the phone at a hall counter when the old phone is lost (issue 11): the person
asks for a reference on /account/phone?counter=1, a hall clerk checks the ID card and
vouches with it (POST /account/phone/counter, in-person hall clients only), the new
number is proved by an SMS code and the change is applied once; audited with the clerk
as ``act`` (numbers masked), both numbers told, the other sessions ended."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlsplit

from idp.extensions import db
from idp.models import Person
from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PHONE,
    form_fields,
    last_sms_code,
    make_person,
    query,
    sms_outbox,
)
from tests.integration.test_account_pages import age_session, events, sign_in
from tests.integration.test_ciba import CLERK, ciba_client

PAGE = "/account/phone?counter=1"
NEW_PHONE = "13700003333"
OTHER_ID = "350102198001011233"


def _token(browser) -> str:
    resp = browser.get(PAGE)
    assert resp.status_code == 200, resp.headers.get("Location")
    return form_fields(resp.get_data(as_text=True))["csrf_token"]


def _reference(browser) -> str:
    resp = browser.post(PAGE, data={"csrf_token": _token(browser), "action": "counter_start"})
    assert resp.status_code == 200
    return re.search(r'id="reference-code">([^<]+)<', resp.get_data(as_text=True)).group(1)


def _vouch(client, hall, reference, hint=CITIZEN_ID):
    return client.post("/account/phone/counter", headers=hall.basic,
                       data={"login_hint": hint, "acting_party": CLERK, "reference": reference})


def _send(browser, phone=NEW_PHONE):
    return browser.post(PAGE, data={"csrf_token": _token(browser), "phone": phone,
                                    "action": "send_code"})


def _change(browser, code, phone=NEW_PHONE):
    return browser.post(PAGE, data={"csrf_token": _token(browser), "phone": phone,
                                    "sms_code": code, "action": "change"})


def _phone_now(person_id) -> str:
    db.session.expire_all()
    return db.session.get(Person, person_id).phone


def _rewrite(ctx, person_id, **changes):
    from idp.account import counter_phone
    from idp.store import store

    with ctx.test_request_context("/"):
        key = counter_phone._key(person_id)
        store().set(key, {**store().get(key), **changes}, 3600)


def test_the_whole_counter_path_changes_the_phone_once(ctx, client, person):
    before = len(sms_outbox(ctx))
    elsewhere = sign_in(ctx, addr="198.51.100.7")  # e.g. still signed in on the lost phone
    browser = sign_in(ctx)
    page = browser.get("/account/phone").get_data(as_text=True)
    assert 'id="old-lost-counter"' in page
    first = browser.get(PAGE).get_data(as_text=True)
    assert 'value="counter_start"' in first and 'name="sms_code"' not in first
    reference = _reference(browser)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", reference)
    waiting = browser.get(PAGE).get_data(as_text=True)
    assert 'id="counter-waiting"' in waiting and reference not in waiting
    # Not vouched yet: no change, whatever is posted.
    assert _send(browser).status_code == 400
    hall = ciba_client(in_person_checks=True)
    vouched = _vouch(client, hall, reference.replace("-", "").lower())
    assert vouched.status_code == 200, vouched.get_data(as_text=True)
    assert vouched.get_json()["status"] == "verified"
    assert vouched.headers["Cache-Control"] == "no-store"
    ready = browser.get(PAGE).get_data(as_text=True)
    assert 'id="counter-vouched"' in ready and 'name="sms_code"' in ready
    sent = _send(browser)
    assert sent.status_code == 200 and "137****3333" in sent.get_data(as_text=True)
    done = _change(browser, last_sms_code(ctx, NEW_PHONE, "phone_new"))
    assert done.status_code == 302 and done.headers["Location"].startswith("/account/")
    assert _phone_now(person.id) == NEW_PHONE
    purposes = {(m["phone"], m["purpose"]) for m in sms_outbox(ctx)[before:]}
    assert (CITIZEN_PHONE, "notice_phone_changed_old") in purposes
    assert (NEW_PHONE, "notice_phone_changed_new") in purposes
    # Audited with the clerk, numbers masked only.
    row = events("account.phone_changed")[-1]
    assert row.details["method"] == "counter" and row.details["old_proved"] is False
    assert row.details["act"]["sub"] == CLERK and row.details["act"]["client_id"] == "hall1"
    assert row.details["new"] == "137****3333" and row.details["old"] == "139****5678"
    text = json.dumps([e.details for e in events("account.phone_counter_vouched")]
                      + [row.details], ensure_ascii=False)
    for secret in (NEW_PHONE, CITIZEN_PHONE, CITIZEN_ID, reference, reference.replace("-", "")):
        assert secret not in text
    # The other session (maybe on the lost phone) ended; this one goes on.
    assert urlsplit(elsewhere.get("/account/").headers.get("Location", "")).path == "/login"
    assert browser.get("/account/").status_code == 200
    # The person's own history shows the clerk's check.
    assert "大厅窗口当面核验" in browser.get("/account/history").get_data(as_text=True)
    # Replay: the check was used up, and the reference cannot be vouched for again.
    assert _vouch(client, hall, reference).get_json()["error"] == "invalid_grant"
    again = _change(browser, last_sms_code(ctx, NEW_PHONE, "phone_new"), phone="13700004444")
    assert again.status_code == 400 and _phone_now(person.id) == NEW_PHONE


def test_a_reference_is_good_for_its_own_account_only(ctx, client, person):
    other = make_person(id_number=OTHER_ID, name="王五", phone="13800001111")
    browser = sign_in(ctx)
    mine = _reference(browser)
    hall = ciba_client(in_person_checks=True)
    # The clerk holds someone else's card: that account has no such reference.
    refused = _vouch(client, hall, mine, hint=OTHER_ID)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    # ... and the rightful holder's reference still works.
    assert _vouch(client, hall, mine).status_code == 200
    assert _phone_now(other.id) == "13800001111"
    assert events("account.phone_counter_refused")[0].subject == other.id


def test_wrong_references_kill_it_and_an_expired_one_is_refused(ctx, client, person):
    browser = sign_in(ctx)
    reference = _reference(browser)
    hall = ciba_client(in_person_checks=True)
    for _ in range(5):
        assert _vouch(client, hall, "ABCD-EFGH").get_json()["error"] == "invalid_grant"
    assert _vouch(client, hall, reference).get_json()["error"] == "invalid_grant"
    # A fresh one, lapsed (as if a day had passed): refused too.
    reference = _reference(browser)
    _rewrite(ctx, person.id, until=time.time() - 1)
    assert _vouch(client, hall, reference).get_json()["error"] == "invalid_grant"
    # A vouch that lapsed before the change was finished: no change.
    reference = _reference(browser)
    assert _vouch(client, hall, reference).status_code == 200
    _rewrite(ctx, person.id, until=time.time() - 1)
    refused = _send(browser)
    assert refused.status_code == 400 and "尚未完成柜台核验" in refused.get_data(as_text=True)
    assert _phone_now(person.id) == CITIZEN_PHONE


def test_a_wrong_sms_code_changes_nothing_and_the_check_stands(ctx, client, person):
    browser = sign_in(ctx)
    hall = ciba_client(in_person_checks=True)
    assert _vouch(client, hall, _reference(browser)).status_code == 200
    _send(browser)
    right = last_sms_code(ctx, NEW_PHONE, "phone_new")
    wrong = _change(browser, "000000" if right != "000000" else "111111")
    assert wrong.status_code == 400 and 'id="sms_code-error"' in wrong.get_data(as_text=True)
    assert _phone_now(person.id) == CITIZEN_PHONE
    assert _change(browser, right).status_code == 302
    assert _phone_now(person.id) == NEW_PHONE


def test_a_stale_sign_in_is_sent_to_sign_in_again(ctx, client, person):
    browser = sign_in(ctx)
    hall = ciba_client(in_person_checks=True)
    assert _vouch(client, hall, _reference(browser)).status_code == 200
    _send(browser)
    code = last_sms_code(ctx, NEW_PHONE, "phone_new")
    token = _token(browser)
    age_session(ctx, browser, ctx.config["SECURITY_REAUTH_SECONDS"] + 60)
    resp = browser.post(PAGE, data={"csrf_token": token, "phone": NEW_PHONE, "sms_code": code,
                                    "action": "change"})
    assert resp.status_code == 302
    loc = resp.headers["Location"]
    assert urlsplit(loc).path == "/login" and query(loc).get("reauth") == "1"
    assert _phone_now(person.id) == CITIZEN_PHONE
    assert events("account.reauth_required")[-1].details["action"] == "phone_counter"


def test_a_password_is_enough_for_a_real_name_account_here(ctx, person):
    person.assurance_level = "L3"
    db.session.commit()
    browser = sign_in(ctx)
    # The face path asks for a step-up; the counter path lets the clerk's check stand in.
    assert urlsplit(browser.get("/account/phone?lost=1").headers["Location"]).path \
        == "/login/step-up"
    assert browser.get(PAGE).status_code == 200


def test_only_in_person_hall_clients_vouch(ctx, client, person):
    browser = sign_in(ctx)
    reference = _reference(browser)
    plain = ciba_client("hall-plain")
    assert _vouch(client, plain, reference).get_json()["error"] == "unauthorized_client"
    hall = ciba_client(in_person_checks=True)
    assert _vouch(client, hall, reference,
                  hint="110101199003070011").get_json()["error"] == "unknown_user_id"
    assert client.post("/account/phone/counter", data={
        "login_hint": CITIZEN_ID, "acting_party": CLERK, "reference": reference}).status_code == 401
    missing = client.post("/account/phone/counter", headers=hall.basic,
                          data={"login_hint": CITIZEN_ID, "acting_party": CLERK})
    assert missing.status_code == 400 and missing.get_json()["error"] == "invalid_request"
    # None of these used the reference up.
    assert _vouch(client, hall, reference).status_code == 200


def test_another_accounts_number_gets_the_same_answer_and_no_code(ctx, client, person):
    make_person(id_number=OTHER_ID, name="王五", phone=NEW_PHONE)
    before = len(sms_outbox(ctx))
    browser = sign_in(ctx)
    hall = ciba_client(in_person_checks=True)
    assert _vouch(client, hall, _reference(browser)).status_code == 200
    taken = _send(browser, NEW_PHONE)
    free = _send(browser, "13700005555")
    assert taken.status_code == free.status_code == 200

    def neutral(resp, digits):
        page = re.sub(r'name="csrf_token" value="[^"]+"', "", resp.get_data(as_text=True))
        return page.replace(f"137****{digits[-4:]}", "N").replace(digits, "T")

    assert neutral(taken, NEW_PHONE) == neutral(free, "13700005555")
    assert not [m for m in sms_outbox(ctx)[before:] if m["phone"] == NEW_PHONE]


def test_references_a_day_are_limited(ctx, person):
    browser = sign_in(ctx)
    for _ in range(5):
        _reference(browser)
    resp = browser.post(PAGE, data={"csrf_token": _token(browser), "action": "counter_start"})
    assert resp.status_code == 429 and 'id="reference-code"' not in resp.get_data(as_text=True)


def test_the_page_reads_in_english_too(ctx):
    from flask_babel import force_locale
    from flask_babel import gettext as _

    with ctx.test_request_context("/"), force_locale("en"):
        assert _("到大厅窗口更换手机号码") == "Change your phone number at a service hall counter"
        assert "by x" in _("窗口工作人员已核验您的身份。请在 %(until)s 前验证新号码并完成更换。",
                           until="x")


def test_the_hall_console_vouches_for_the_reference_the_citizen_shows(ctx, person, monkeypatch):
    """The demo counter page (/demo/hall/phone) drives the same endpoint with the demo
    hall client's credentials; its HTTP call is answered by this app in-process."""
    from idp.demo import hall_reset
    from tests.helpers import RP

    hall = ciba_client("demo-hall", in_person_checks=True)
    api = ctx.test_client()

    def call(path, auth, data):
        resp = api.post(path, data=data, headers=RP(*auth).basic)
        return resp.status_code, resp.get_json()

    monkeypatch.setattr(hall_reset, "_credentials", lambda cid: (cid, hall.secret))
    monkeypatch.setattr(hall_reset, "_call", call)
    citizen = sign_in(ctx)
    reference = _reference(citizen)
    console = ctx.test_client()
    token = form_fields(console.get("/demo/hall/phone").get_data(as_text=True))["csrf_token"]
    form = {"csrf_token": token, "login_hint": CITIZEN_ID, "acting_party": CLERK,
            "reference": reference}
    unchecked = console.post("/demo/hall/phone", data=form)
    assert unchecked.status_code == 400 and "当面核对" in unchecked.get_data(as_text=True)
    wrong = console.post("/demo/hall/phone", data={**form, "reference": "ZZZZ-ZZZZ",
                                                   "checked": "document"})
    assert wrong.status_code == 400 and 'id="hall-phone-error"' in wrong.get_data(as_text=True)
    done = console.post("/demo/hall/phone", data={**form, "checked": "document"})
    assert done.status_code == 200 and 'id="hall-phone-done"' in done.get_data(as_text=True)
    assert 'id="counter-vouched"' in citizen.get(PAGE).get_data(as_text=True)
    assert events("account.phone_counter_vouched")[0].actor == CLERK
