"""找回密码: an SMS code to the registered phone, a face match, or a reset code a hall
clerk issues after an in-person document check. A reset ends every session (relying
parties told by back-channel logout) and token of the account and notifies by SMS;
unknown numbers get the same answers."""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pytest

from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PASSWORD,
    CITIZEN_PHONE,
    authorize_url,
    form_fields,
    make_client,
    sms_outbox,
    tokens_for,
)
from tests.integration.test_ciba import CLERK, ciba_client
from tests.integration.test_face_stepup import gray_png
from tests.integration.test_logout import Receiver

NEW_PASSWORD = "Harbour-Lights-77"
UNKNOWN_ID = "110101199003070011"


def _hidden(browser, url="/recover"):
    resp = browser.get(url)
    assert resp.status_code == 200
    return form_fields(resp.get_data(as_text=True))


def _form(id_number=CITIZEN_ID, name="李四", phone=CITIZEN_PHONE, **extra):
    return {"id_number": id_number, "name": name, "phone": phone, **extra}


def _send(browser, hidden, **fields):
    return browser.post("/recover", data={**hidden, **_form(**fields), "action": "send_code"})


def _codes(app, phone=CITIZEN_PHONE):
    return [m["code"] for m in sms_outbox(app) if m["phone"] == phone and m["purpose"] == "recover"]


def _neutral(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


def _signed_in(ctx):
    browser = ctx.test_client()
    browser.post("/login", data={**_hidden(browser, "/login"), "username": CITIZEN_ID,
                                 "password": CITIZEN_PASSWORD})
    return browser


def _can_sign_in(ctx, password) -> bool:
    browser = ctx.test_client()
    resp = browser.post("/login", data={**_hidden(browser, "/login"), "username": CITIZEN_ID,
                                        "password": password})
    return resp.status_code == 302


def _audited(event):
    from idp import audit
    from idp.audit import AuditEvent
    from idp.extensions import db

    audit.flush()
    db.session.expire_all()
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == event)
                              .order_by(AuditEvent.seq)).all()


def test_the_form_carries_the_contract_names(client):
    html = client.get("/recover").get_data(as_text=True)
    for name in ("id_number", "name", "phone", "sms_code", "new_password", "csrf_token"):
        assert f'name="{name}"' in html
    assert 'name="action" value="send_code"' in html


def test_a_reset_by_sms_ends_every_session_and_token_and_notifies(ctx, person):
    from idp.authn import session as sso
    from idp.extensions import db
    from idp.models import RefreshToken

    receiver = Receiver()
    try:
        rp = make_client("bc-rp", backchannel=receiver.url, grant_types=[
            "authorization_code", "refresh_token"])
        elsewhere = _signed_in(ctx)
        tokens = tokens_for(elsewhere, rp, scope="openid offline_access")
        browser = ctx.test_client()
        hidden = _hidden(browser)
        assert _send(browser, hidden).status_code == 200
        done = browser.post("/recover", data={**hidden, **_form(), "sms_code": _codes(ctx)[-1],
                                              "new_password": NEW_PASSWORD})
        assert done.status_code == 200 and "密码已重置" in done.get_data(as_text=True)
        # The relying party of the other browser's session was told.
        assert len(receiver.wait(1)) == 1
    finally:
        receiver.close()
    with ctx.test_request_context("/"):
        assert sso.sessions_of(person.id) == []
    loc = elsewhere.get(authorize_url(rp, scope="openid")).headers["Location"]
    assert urlsplit(loc).path == "/login"
    if "refresh_token" in tokens:
        refreshed = elsewhere.post("/token", headers=rp.basic, data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 400
    assert db.session.scalar(db.select(RefreshToken.id).where(
        RefreshToken.person_id == person.id, RefreshToken.revoked_at.is_(None))) is None
    introspect = ctx.test_client().post("/introspect", headers=rp.basic,
                                        data={"token": tokens["access_token"]})
    assert introspect.get_json()["active"] is False
    assert not _can_sign_in(ctx, CITIZEN_PASSWORD) and _can_sign_in(ctx, NEW_PASSWORD)
    notices = [m for m in sms_outbox(ctx) if m["purpose"] == "notice_password_reset"
               and m["phone"] == CITIZEN_PHONE]
    assert notices and "重置" in notices[-1]["text"]
    rows = _audited("password.reset")
    assert len(rows) == 1 and rows[0].details["method"] == "sms"
    assert CITIZEN_PHONE not in str(rows[0].details)


@pytest.mark.parametrize("variant", ["unknown_number", "wrong_name", "wrong_phone"])
def test_mismatched_details_get_the_answers_a_match_gets_and_no_code(ctx, person, variant):
    fields = {"unknown_number": {"id_number": UNKNOWN_ID},
              "wrong_name": {"name": "张三"},
              "wrong_phone": {"phone": "13700009999"}}[variant]
    # Both numbers wait out the same interval between codes; here it would only stop the
    # second send of the same phone.
    ctx.config["SMS_PHONE_INTERVAL"] = 0
    answers = []
    for typed in ({}, fields):
        browser = ctx.test_client()
        hidden = _hidden(browser)
        before = len(sms_outbox(ctx))
        sent = _send(browser, hidden, **typed)
        delivered = len(sms_outbox(ctx)) - before
        guess = browser.post("/recover", data={**hidden, **_form(**typed), "sms_code": "000001",
                                               "new_password": NEW_PASSWORD})
        values = _form(**typed)
        answers.append((delivered, sent.status_code, _typed_out(sent, values),
                        guess.status_code, _typed_out(guess, values)))
    ctx.config["SMS_PHONE_INTERVAL"] = 60
    assert answers[0][0] == 1 and answers[1][0] == 0  # a code only to the account's phone
    assert answers[0][1:] == answers[1][1:]


def _typed_out(resp, values) -> str:
    """The page without what differs by construction: what was typed, the CSRF token."""
    html = _neutral(resp.get_data(as_text=True))
    html = html.replace(values["phone"][:3] + "****" + values["phone"][-4:], "#")
    for key in ("id_number", "name", "phone"):
        html = html.replace(values[key], "#")
    return html.replace(values["phone"][-4:], "#")


def test_attempts_per_number_are_limited(ctx, person):
    limit = ctx.config["RECOVER_NUMBER_DAILY"]
    statuses = []
    for i in range(limit + 1):
        browser = ctx.test_client()
        resp = browser.post("/recover", data={**_hidden(browser), **_form(phone=f"1370000{i:04d}"),
                                              "action": "send_code"},
                            environ_base={"REMOTE_ADDR": f"198.51.100.{i + 1}"})
        statuses.append(resp.status_code)
    assert statuses[:limit] == [200] * limit and statuses[limit] == 429


def test_a_weak_new_password_is_refused_and_the_old_one_stays(ctx, client, person):
    hidden = _hidden(client)
    _send(client, hidden)
    resp = client.post("/recover", data={**hidden, **_form(), "sms_code": _codes(ctx)[-1],
                                         "new_password": "woaini1314"})
    assert resp.status_code == 400 and "常见密码" in resp.get_data(as_text=True)
    assert _can_sign_in(ctx, CITIZEN_PASSWORD)


def _face(browser, hidden, image=None, **fields):
    data = {**hidden, "id_number": fields.get("id_number", CITIZEN_ID),
            "name": fields.get("name", "李四"), "new_password": NEW_PASSWORD,
            "photo": (io.BytesIO(image or gray_png(480, 640)), "me.png")}
    return browser.post("/recover/face", data=data, content_type="multipart/form-data")


def test_a_lost_phone_is_replaced_by_a_face_match_for_a_real_name_account(ctx, person):
    from idp.accounts import raise_level

    raise_level(person, "L3", "register", actor="test")
    browser = ctx.test_client()
    resp = _face(browser, _hidden(browser, "/recover/face"))
    assert resp.status_code == 200 and "密码已重置" in resp.get_data(as_text=True)
    assert _can_sign_in(ctx, NEW_PASSWORD)


def test_face_refusals_read_alike_for_unknown_unverified_and_mismatched(ctx, person):
    bodies = set()
    for case in ("unknown", "self_declared", "mismatch"):
        if case == "mismatch":
            from idp.accounts import raise_level

            raise_level(person, "L3", "register", actor="test")
            ctx.config["FACE_DEV_MISMATCH"] = [CITIZEN_ID]
        browser = ctx.test_client()
        resp = _face(browser, _hidden(browser, "/recover/face"),
                     id_number=UNKNOWN_ID if case == "unknown" else CITIZEN_ID)
        assert resp.status_code == 400
        bodies.add(_neutral(resp.get_data(as_text=True)).replace(UNKNOWN_ID, "#")
                   .replace(CITIZEN_ID, "#"))
    ctx.config["FACE_DEV_MISMATCH"] = []
    assert len(bodies) == 1 and "人脸核验未通过" in bodies.pop()
    assert _can_sign_in(ctx, CITIZEN_PASSWORD)


def test_a_picture_that_is_no_photo_is_refused_before_anyone_is_looked_up(ctx, client, person):
    resp = _face(client, _hidden(client, "/recover/face"), image=b"not an image at all")
    assert resp.status_code == 400 and "无法识别照片" in resp.get_data(as_text=True)


def _counter_code(client, hall, hint=CITIZEN_ID):
    return client.post("/recover/counter", headers=hall.basic,
                       data={"login_hint": hint, "acting_party": CLERK})


def test_a_clerk_vouched_reset_code_resets_once(ctx, client, person):
    hall = ciba_client(in_person_checks=True)
    issued = _counter_code(client, hall)
    assert issued.status_code == 200 and issued.headers["Cache-Control"] == "no-store"
    code = issued.get_json()["reset_code"]
    browser = ctx.test_client()
    hidden = _hidden(browser, "/recover/code")
    data = {**hidden, "id_number": CITIZEN_ID, "name": "李四", "reset_code": code.lower(),
            "new_password": NEW_PASSWORD}
    resp = browser.post("/recover/code", data=data)
    assert resp.status_code == 200 and "密码已重置" in resp.get_data(as_text=True)
    assert _can_sign_in(ctx, NEW_PASSWORD)
    again = browser.post("/recover/code", data={**data, "new_password": "Other-Path-9x"})
    assert again.status_code == 400 and "重置码无效" in again.get_data(as_text=True)
    rows = _audited("password.reset")
    assert rows[0].actor == CLERK and rows[0].details["method"] == "counter"


def test_only_a_hall_permitted_to_vouch_in_person_issues_codes(ctx, client, person):
    plain = ciba_client("hall-plain")
    assert _counter_code(client, plain).get_json()["error"] == "unauthorized_client"
    hall = ciba_client(in_person_checks=True)
    assert _counter_code(client, hall, hint=UNKNOWN_ID).get_json()["error"] == "unknown_user_id"
    assert client.post("/recover/counter", data={"login_hint": CITIZEN_ID,
                                                 "acting_party": CLERK}).status_code == 401


def test_wrong_reset_codes_kill_the_code(ctx, client, person):
    hall = ciba_client(in_person_checks=True)
    code = _counter_code(client, hall).get_json()["reset_code"]
    browser = ctx.test_client()
    hidden = _hidden(browser, "/recover/code")
    base = {**hidden, "id_number": CITIZEN_ID, "name": "李四", "new_password": NEW_PASSWORD}
    for _ in range(5):
        browser.post("/recover/code", data={**base, "reset_code": "ABCDE-FGHJK"})
    resp = browser.post("/recover/code", data={**base, "reset_code": code})
    assert resp.status_code == 400
    assert _can_sign_in(ctx, CITIZEN_PASSWORD)


ODD_INPUTS = ["", " ", "\x00", "１１０１０５１９４９１２３１００２ｘ", "x" * 5000,
              "\u202e13912345678", "<script>", "12345678901234567890", "+86 139 1234 5678"]


@pytest.mark.parametrize("path", ["/register", "/recover", "/recover/face", "/recover/code"])
def test_odd_input_gets_a_readable_answer_never_a_500(ctx, client, person, path):
    hidden = _hidden(client, path)
    for value in ODD_INPUTS:
        for action in ("send_code", "register", "reset"):
            data = {**hidden, "id_number": value, "name": value, "phone": value,
                    "sms_code": value, "password": value, "new_password": value,
                    "reset_code": value, "action": action}
            resp = client.post(path, data=data)
            assert resp.status_code in (200, 400, 429), (path, value[:20], resp.status_code)
            assert "<script>" not in resp.get_data(as_text=True)
    # Repeated fields take the first, as every form here does.
    from werkzeug.datastructures import MultiDict

    resp = client.post(path, data=MultiDict([*hidden.items(), ("id_number", CITIZEN_ID),
                                             ("id_number", UNKNOWN_ID),
                                             ("action", "send_code")]))
    assert resp.status_code in (200, 400)


def test_a_reset_lifts_the_lockout_the_wrong_guesses_caused(ctx, person):
    for _ in range(ctx.config["LOCKOUT_THRESHOLD"]):
        _can_sign_in(ctx, "Wrong-Guess-000")
    assert not _can_sign_in(ctx, CITIZEN_PASSWORD)  # locked, even with the right one
    browser = ctx.test_client()
    hidden = _hidden(browser)
    _send(browser, hidden)
    browser.post("/recover", data={**hidden, **_form(), "sms_code": _codes(ctx)[-1],
                                   "new_password": NEW_PASSWORD})
    assert _can_sign_in(ctx, NEW_PASSWORD)
