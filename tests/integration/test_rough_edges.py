"""The rough edges of issue 11: the elder-friendly display, words instead of raw codes,
the step-up SMS field only when a code was sent, the app's QR list, the logout
confirmation's cancel and the signed-out home page."""

from __future__ import annotations

from urllib.parse import urlsplit

from idp.extensions import db
from tests.helpers import CITIZEN_PHONE, form_fields, make_client
from tests.integration.test_account_pages import sign_in
from tests.integration.test_stepup import Flow


def test_elder_display_is_one_link_away_remembered_and_local(client):
    home = client.get("/").get_data(as_text=True)
    assert 'id="display-toggle"' in home and 'class="elder"' not in home
    resp = client.get("/display/elder?next=/login%3Flang%3Den")
    assert resp.status_code == 303 and resp.headers["Location"] == "/login?lang=en"
    page = client.get("/login").get_data(as_text=True)
    assert 'class="elder"' in page and "标准模式" in page
    # Never off the site, however the address is written.
    for evil in ("//evil.example/", "/\\evil.example", "https://evil.example/"):
        assert client.get("/display/elder", query_string={"next": evil}).headers[
            "Location"] == "/"
    client.get("/display/standard?next=/")
    assert 'class="elder"' not in client.get("/").get_data(as_text=True)
    assert client.get("/display/bigger").status_code == 404


def test_signed_out_home_says_what_the_platform_is(client):
    html = client.get("/").get_data(as_text=True)
    assert 'id="about"' in html and 'id="can-do"' in html
    assert 'id="home-login"' in html and 'id="home-recover"' in html


def test_home_and_account_name_levels_in_words(ctx, person):
    browser = sign_in(ctx)
    home = browser.get("/").get_data(as_text=True)
    assert "L2 · 基本" in home and "我的账号" in home and "我的账户与企业" not in home
    assert "本次登录认证等级" in home and "账号认证等级" in home


def test_enterprise_picker_names_scopes_in_words(ctx, client, person):
    from idp.orgs import register_org
    from tests.helpers import authorize_url, follow_login

    register_org("91350100M000100Y43", "福州演示科技有限公司", person.id_number, actor="test")
    rp = make_client("rp-org", org_roles=["legal_rep"])
    resp = follow_login(client, client.get(authorize_url(rp, scope="openid org")))
    assert urlsplit(resp.headers["Location"]).path == "/org/select"
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "全部业务" in html and "· all" not in html


def test_step_up_shows_no_code_field_when_nothing_was_sent(ctx, client, person, rp):
    person.assurance_level = "L3"
    db.session.commit()
    # An SMS sign-in code was just sent to this phone: the next send waits the interval.
    token = form_fields(client.get("/login/sms").get_data(as_text=True))["csrf_token"]
    client.post("/login/sms", data={"csrf_token": token, "action": "send",
                                    "phone": CITIZEN_PHONE})
    flow = Flow(client, rp)  # signed in with the password, asked for L3
    refused = flow.post("sms_send")
    assert refused.status_code in (400, 429) and "发送过于频繁" in flow.html
    assert 'name="code"' not in flow.html


def test_the_app_lists_only_the_qr_code_a_browser_shows_now(ctx, person):
    from idp.channels import approvals

    with ctx.test_request_context("/"):
        old = approvals.create("qr", "", ttl=120, extra={"browser": "b1"})
        new = approvals.create("qr", "", ttl=120, extra={"browser": "b1"})
        other = approvals.create("qr", "", ttl=120, extra={"browser": "b2"})
        for a in (old, new, other):
            approvals.bind(a.id, person.id)
        assert [a.id for a in approvals.pending_for(person.id)] == [new.id, other.id]


def test_logout_confirmation_can_be_cancelled(ctx, person):
    browser = sign_in(ctx)
    page = browser.get("/logout").get_data(as_text=True)
    assert 'id="logout-cancel"' in page
    cancel = page.split('id="logout-cancel" href="')[1].split('"')[0]
    assert browser.get(cancel).status_code == 200
    assert browser.get("/account/").status_code == 200  # still signed in


def test_hall_result_uses_words_and_a_named_zone(ctx):
    from flask import render_template

    with ctx.test_request_context("/"):
        html = render_template("hall_claims.html", s={
            "state": "approved", "kind": "hall", "claims": {
                "sub": "abc…", "acr": "L5", "amr": ["pwd", "counter"], "channel": "hall",
                "auth_time": 1_800_000_000}}, ref="r", remaining=0)
    assert "pwd, counter" not in html and "密码、窗口现场核验" in html
    assert "政务服务大厅窗口" in html and "北京时间" in html
