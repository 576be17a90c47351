"""个人注册 and prompt=create: a citizen creates an account with an SMS-proved phone and a
policy-checked password, is signed in, and a relying party that asked for prompt=create
gets its code. A registered number gets the same answers as a new one."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlsplit

import pytest

from idp.identity import compute_check_char
from tests.helpers import (
    CITIZEN_ID,
    authorize_url,
    exchange,
    form_fields,
    make_client,
    pkce_pair,
    query,
    sms_outbox,
)

NEW_ID = "110101199003070011"
NEW_PHONE = "13700001111"
GOOD_PASSWORD = "Lantern-Rain-42"


def _id(first17: str) -> str:
    return first17 + compute_check_char(first17)


def _page(browser, url="/register", **env):
    resp = browser.get(url, environ_base=env or {})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return form_fields(resp.get_data(as_text=True))


def _form(id_number=NEW_ID, name="王五", phone=NEW_PHONE, **extra):
    return {"id_number": id_number, "name": name, "phone": phone, **extra}


def _send(browser, hidden, addr="192.0.2.10", **fields):
    return browser.post("/register", data={**hidden, **_form(**fields), "action": "send_code"},
                        environ_base={"REMOTE_ADDR": addr})


def _code(app, phone=NEW_PHONE):
    msgs = [m for m in sms_outbox(app) if m["phone"] == phone and m["purpose"] == "register"]
    assert msgs, f"no registration code to {phone}"
    return msgs[-1]["code"]


def _register(browser, app, hidden, addr="192.0.2.10", password=GOOD_PASSWORD, **fields):
    sent = _send(browser, hidden, addr, **fields)
    assert sent.status_code == 200, sent.get_data(as_text=True)[:500]
    data = {**hidden, **_form(**fields), "sms_code": _code(app, fields.get("phone", NEW_PHONE)),
            "password": password, "action": "register"}
    return browser.post("/register", data=data, environ_base={"REMOTE_ADDR": addr})


def _neutral(html: str) -> str:
    # What differs between two browsers anyway: their CSRF tokens.
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


def test_form_has_the_contract_field_names_and_a_csrf_token(client):
    html = client.get("/register").get_data(as_text=True)
    for name in ("id_number", "name", "phone", "sms_code", "password", "csrf_token"):
        assert f'name="{name}"' in html
    assert 'name="action" value="send_code"' in html
    # Each field's hint is tied to it for screen readers.
    assert 'aria-describedby="id_number-hint"' in html


def test_login_page_links_to_registration_and_recovery(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'href="/register"' in html and 'href="/recover"' in html


def test_registration_creates_a_signed_in_real_name_account(ctx, client):
    from idp.accounts import person_by_id_number

    hidden = _page(client)
    resp = _register(client, ctx, hidden)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/"
    person = person_by_id_number(NEW_ID)
    assert person is not None and person.phone == NEW_PHONE and person.name == "王五"
    # The dev population register confirms name and number: L3 on the spot.
    assert person.assurance_level == "L3" and person.assurance_method == "register"
    home = client.get("/").get_data(as_text=True)
    assert "王" in home and "0011" in home
    # The password chosen signs in.
    fresh = ctx.test_client()
    login = fresh.post("/login", data={**_page(fresh, "/login"), "username": NEW_ID,
                                       "password": GOOD_PASSWORD})
    assert login.status_code == 302


def test_the_account_stays_self_declared_when_the_register_does_not_confirm(ctx, client):
    from idp.accounts import person_by_id_number

    ctx.config["REALNAME_DEV_NOT_IN_REGISTER"] = [NEW_ID]
    try:
        assert _register(client, ctx, _page(client)).status_code == 302
    finally:
        ctx.config["REALNAME_DEV_NOT_IN_REGISTER"] = []
    assert person_by_id_number(NEW_ID).assurance_level == "L2"


def test_prompt_create_registers_and_the_relying_party_gets_its_code(ctx, client):
    from idp.accounts import person_by_id_number

    rp = make_client("reg-rp")
    verifier, challenge = pkce_pair()
    start = client.get(authorize_url(rp, prompt="create", code_challenge=challenge,
                                     code_challenge_method="S256"))
    assert start.status_code == 302
    loc = urlsplit(start.headers["Location"])
    assert loc.path == "/register" and "rid=" in loc.query
    page = client.get(start.headers["Location"]).get_data(as_text=True)
    assert "测试应用 reg-rp" in page
    resp = _register(client, ctx, form_fields(page))
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/authorize"
    resp = client.get(resp.headers["Location"])
    if urlsplit(resp.headers["Location"]).path == "/consent":
        fields = form_fields(client.get(resp.headers["Location"]).get_data(as_text=True))
        resp = client.get(client.post("/consent", data={**fields, "consent": "allow"})
                          .headers["Location"])
    q = query(resp.headers["Location"])
    assert resp.headers["Location"].startswith(rp.redirect_uri) and "code" in q
    tokens = exchange(client, rp, q["code"], verifier).get_json()
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # Verified against the register on the spot, and signed in with the password chosen
    # and the phone just proved: the real-name level.
    assert claims["acr"] == "L3" and set(claims["amr"]) == {"pwd", "sms"}
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    assert person_by_id_number(NEW_ID) is not None


def test_prompt_create_with_an_existing_session_still_shows_registration(ctx, client, person):
    rp = make_client("reg-rp2")
    client.post("/login", data={**_page(client, "/login"), "username": CITIZEN_ID,
                                "password": "Correct-Horse-9"})
    resp = client.get(authorize_url(rp, prompt="create"))
    assert urlsplit(resp.headers["Location"]).path == "/register"


def test_discovery_lists_prompt_create(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "create" in meta["prompt_values_supported"]


def test_a_registered_number_gets_the_same_answers_and_its_holder_is_told(ctx, person):
    from idp.accounts import person_by_phone

    answers = []
    for number, phone in ((CITIZEN_ID, "13700002222"), (NEW_ID, "13700003333")):
        browser = ctx.test_client()
        hidden = _page(browser)
        sent = _send(browser, hidden, id_number=number, phone=phone)
        data = {**hidden, **_form(id_number=number, phone=phone), "action": "register",
                "sms_code": _code(ctx, phone), "password": GOOD_PASSWORD}
        done = browser.post("/register", data=data)
        answers.append((sent.status_code, _neutral(sent.get_data(as_text=True))
                        .replace(number, "#ID#").replace(phone[-4:], "####"),
                        done.status_code, done.headers["Location"], done.get_data()))
    assert answers[0] == answers[1]
    # Nothing was created for the registered number; its holder got a notice.
    assert person_by_phone("13700002222") is None
    notices = [m for m in sms_outbox(ctx) if m["phone"] == person.phone
               and m["purpose"] == "notice_register_attempt"]
    assert len(notices) == 1 and "注册" in notices[0]["text"] and notices[0]["code"] == ""


def test_a_wrong_id_number_is_explained_with_its_check_digit(client):
    hidden = _page(client)
    resp = client.post("/register", data={**hidden, **_form(id_number=CITIZEN_ID[:-1] + "3"),
                                          "sms_code": "123456", "password": GOOD_PASSWORD})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "校验" in html and 'aria-invalid="true"' in html and "id_number-error" in html


@pytest.mark.parametrize(("password", "why"), [
    ("Passw0rd", "常见密码"),
    ("short1A", "至少"),
    ("aaaaaaaaaaaa", "重复"),
    ("lettersonly", "类字符"),
    ("Ab-070011-q", "证件号码"),
    ("Zz13700001111", "手机号码"),
])
def test_weak_passwords_are_refused_before_anything_is_created(ctx, client, password, why):
    from idp.accounts import person_by_id_number

    resp = _register(client, ctx, _page(client), password=password)
    assert resp.status_code == 400
    assert why in resp.get_data(as_text=True)
    assert person_by_id_number(NEW_ID) is None


def test_a_wrong_sms_code_creates_nothing(ctx, client):
    from idp.accounts import person_by_id_number

    hidden = _page(client)
    _send(client, hidden)
    right = _code(ctx)
    wrong = "000000" if right != "000000" else "111111"
    resp = client.post("/register", data={**hidden, **_form(), "sms_code": wrong,
                                          "password": GOOD_PASSWORD})
    assert resp.status_code == 400 and "验证码错误" in resp.get_data(as_text=True)
    assert person_by_id_number(NEW_ID) is None


def test_a_phone_already_bound_is_refused_after_it_is_proved(ctx, client, person):
    from idp.accounts import person_by_id_number

    resp = _register(client, ctx, _page(client), phone=person.phone)
    assert resp.status_code == 400 and "已绑定其他账号" in resp.get_data(as_text=True)
    assert person_by_id_number(NEW_ID) is None


@pytest.mark.parametrize("first17", [
    "81000019900101003",          # Hong Kong residents' residence permit
    "830000" + "19851120" + "004",  # Taiwan residents' residence permit
    "9" + "31" + "840" + "19800704" + "005",  # foreigner's permanent residence ID
])
def test_permits_and_foreigners_ids_register_the_same_way(ctx, client, first17):
    from idp.accounts import person_by_id_number

    number = _id(first17)
    assert _register(client, ctx, _page(client), id_number=number).status_code == 302
    assert person_by_id_number(number) is not None


def test_attempts_per_number_are_limited_across_addresses(ctx):
    limit = ctx.config["REGISTER_NUMBER_DAILY"]
    statuses = []
    for i in range(limit + 1):
        browser = ctx.test_client()
        statuses.append(_send(browser, _page(browser), addr=f"198.51.100.{i + 1}",
                              phone=f"1370000{i:04d}").status_code)
    assert statuses[:limit] == [200] * limit and statuses[limit] == 429


def test_attempts_per_address_are_limited(ctx):
    ctx.config["REGISTER_ADDRESS_HOURLY"] = 3
    try:
        statuses = []
        for i in range(4):
            browser = ctx.test_client()
            statuses.append(_send(browser, _page(browser), addr="203.0.113.77",
                                  id_number=_id(f"11010119900301{i + 1:03d}"),
                                  phone=f"1370001{i:04d}").status_code)
    finally:
        ctx.config["REGISTER_ADDRESS_HOURLY"] = 20
    assert statuses == [200, 200, 200, 429]


def test_a_post_without_the_csrf_token_is_refused(client):
    before = len(sms_outbox(client.application))
    resp = client.post("/register", data={**_form(), "action": "send_code"})
    assert resp.status_code == 400
    assert len(sms_outbox(client.application)) == before


def test_closed_registration_answers_404_and_drops_create(ctx, client):
    ctx.config["REGISTRATION_OPEN"] = False
    try:
        assert client.get("/register").status_code == 404
        meta = client.get("/.well-known/openid-configuration").get_json()
        assert "create" not in meta["prompt_values_supported"]
        assert 'href="/register"' not in client.get("/login").get_data(as_text=True)
    finally:
        ctx.config["REGISTRATION_OPEN"] = True


def test_registration_is_audited_with_personal_data_masked(ctx, client, person):
    from idp import audit
    from idp.audit import AuditEvent
    from idp.extensions import db

    _register(client, ctx, _page(client))
    other = ctx.test_client()
    _register(other, ctx, _page(other), id_number=CITIZEN_ID, phone="13700004444")
    audit.flush()
    db.session.expire_all()
    rows = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event.in_(
        ["account.registered", "account.register_duplicate"]))).all()
    assert {r.event for r in rows} == {"account.registered", "account.register_duplicate"}
    text = " ".join(str(r.details) for r in rows)
    assert NEW_PHONE not in text and "13700004444" not in text and NEW_ID not in text


def test_signing_in_from_the_registration_page_also_satisfies_prompt_create(ctx, client, person):
    rp = make_client("reg-rp3")
    start = client.get(authorize_url(rp, prompt="create"))
    page = client.get(start.headers["Location"]).get_data(as_text=True)
    login_link = re.search(r'href="(/login\?rid=[^"]+)"', page).group(1)
    login_page = client.get(login_link.replace("&amp;", "&"))
    resp = client.post("/login", data={**form_fields(login_page.get_data(as_text=True)),
                                       "username": CITIZEN_ID, "password": "Correct-Horse-9"})
    resp = client.get(resp.headers["Location"])
    # Past the registration check: on to consent (or the code), not back to /register.
    assert urlsplit(resp.headers["Location"]).path != "/register"


def test_an_expired_request_id_is_said_plainly(client):
    resp = client.get("/register?rid=not-a-request")
    assert resp.status_code == 400 and "过期" in resp.get_data(as_text=True)


def test_the_relying_partys_id_number_hint_fills_the_field(client, ctx):
    rp = make_client("reg-rp4")
    start = client.get(authorize_url(rp, prompt="create", login_hint=NEW_ID))
    page = client.get(start.headers["Location"]).get_data(as_text=True)
    assert f'value="{NEW_ID}"' in page
