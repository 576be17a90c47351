"""Acting for an enterprise, end to end: ``idp serve`` on PostgreSQL + Redis, set up
only through the CLI, an independent relying party (openid-client, rp_flow.mjs), plain
HTTP for the account pages and headless Chromium for the enterprise page.

The relying party (scenario "org") can stop while it holds its tokens (``pause``): the
test revokes or expires the appointment meanwhile, then lets it go on to find out what
its tokens are still worth.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import psycopg
import pytest
import requests

from .conftest import ROOT, idp_command
from .node_script import NodeScript
from .oauth import hidden_fields
from .rp_result import explain, ok, refused

USCC = "91350100M000100Y43"
ORG_NAME = "福州闽江科技有限公司"
ORG_B = "91110108551385082Q"
ORG_B_NAME = "北京海淀数据服务有限公司"
STRANGER_USCC = "91440300MA5F000181"  # a valid credit code no one registered

PASSWORD = "E2e-Enterprise-2026"
REP_ID, REP_NAME = "11010519491231002X", "陈建国"  # legal representative of both
AGENT_ID, AGENT_NAME = "110101199003070011", "王小明"  # agent (tax), appointed by the CLI
OUTSIDER_ID, OUTSIDER_NAME = "35010219850612003X", "林一帆"  # never appointed
NEW_AGENT_ID, NEW_AGENT_NAME = "350102199203050040", "赵雅琴"  # appointed on the page
EXPIRING_ID, EXPIRING_NAME = "440305198811200054", "黄志强"  # appointment that runs out
UNREGISTERED_ID = "310101197510080060"  # valid, but no such person on the platform
PEOPLE = [(REP_ID, REP_NAME), (AGENT_ID, AGENT_NAME), (OUTSIDER_ID, OUTSIDER_NAME),
          (NEW_AGENT_ID, NEW_AGENT_NAME), (EXPIRING_ID, EXPIRING_NAME)]

CLIENT_ID, CLIENT_NAME = "e2e-etax", "电子税务局（测试）"
REDIRECT = "http://127.0.0.1/rp/org-callback"
CST = dt.timezone(dt.timedelta(hours=8))


def masked_id(number: str) -> str:
    return number[:6] + "*" * 8 + number[-4:]


def masked_name(name: str) -> str:
    return name[0] + "*" * (len(name) - 1)


# -- fixtures ---------------------------------------------------------------------------


def cli_all(live_idp, *commands: tuple[str, ...], check: bool = True) -> list:
    """Independent CLI commands at once (each ``idp`` process spends a second starting)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda argv: live_idp.run_cli(*argv, check=check), commands))


@pytest.fixture(scope="module")
def world(live_idp) -> dict:
    """People, two enterprises, an agent appointed by the CLI and a first-party client."""
    check, client, *people = cli_all(
        live_idp, ("id", "check", USCC),
        ("client", "add", "--client-id", CLIENT_ID, "--name", CLIENT_NAME,
         "--redirect-uri", REDIRECT, "--first-party"),
        *[("user", "add", "--id-number", number, "--name", name, "--password", PASSWORD)
          for number, name in PEOPLE])
    assert check["valid"] is True and check["kind"] == "credit_code", check  # check char
    assert client["client_secret"]
    assert [p["id_number"] for p in people] == [masked_id(n) for n, _name in PEOPLE]
    org, _org_b = cli_all(
        live_idp, ("org", "add", "--uscc", USCC, "--name", ORG_NAME, "--legal-rep", REP_ID),
        ("org", "add", "--uscc", ORG_B, "--name", ORG_B_NAME, "--legal-rep", REP_ID))
    assert org["uscc"] == USCC and org["name"] == ORG_NAME
    agent = live_idp.run_cli("org", "grant", "--uscc", USCC, "--id-number", AGENT_ID,
                             "--role", "agent", "--scope", "tax")
    assert agent["role"] == "agent" and agent["scopes"] == ["tax"]
    assert agent["valid_until"] is None
    return {"client": client, "agent_membership": agent["membership"]}


# -- the relying party ----------------------------------------------------------------------


def relying_party(node: str, live_idp, world: dict, scenario: str, username: str,
                  **extra) -> NodeScript:
    """rp_flow.mjs in its own process; one cookie jar, i.e. one browser, per process.
    With ``pause=True`` it stops holding its tokens: ``wait("paused", "revoke")``, act,
    ``send()``."""
    config = {"scenario": scenario, "issuer": live_idp.issuer, "username": username,
              "password": PASSWORD, "scope": "openid org offline_access",
              "client": {"client_id": CLIENT_ID, "redirect_uri": REDIRECT,
                         "client_secret": world["client"]["client_secret"],
                         "token_endpoint_auth_method": "client_secret_basic"},
              **extra}
    return NodeScript(node, "rp_flow.mjs", config, idp=live_idp)


def run_rp(node, live_idp, world, scenario: str, username: str, **extra) -> dict:
    with relying_party(node, live_idp, world, scenario, username, **extra) as rp:
        return rp.result()


def org_claim(role: str, scopes: list[str], uscc: str = USCC, name: str = ORG_NAME) -> dict:
    return {"uscc": uscc, "name": name, "role": role, "scopes": scopes}


def check_refusal(result: dict, issuer: str, uscc: str | None) -> None:
    """The refusal page (403, in Chinese) and its link back: access_denied at the RP."""
    a = ok(result, "authorize")
    r = a.get("refusal")
    assert r is not None, explain(result, "no refusal page")
    assert r["status"] == 403 and r["back_to_redirect_uri"] is True, r
    assert r["title"] == "无法代表该企业办理业务", r
    if uscc:
        assert f"您没有代表统一社会信用代码为 {uscc} 的企业或组织办理业务的有效授权" in r["text"], r
    else:
        assert "您目前没有可以代表的企业或组织" in r["text"], r
    assert not a["has_code"] and a["error_param"] == "access_denied" and a["state_echoed"], a
    assert a["iss_param"] == issuer, a
    refused(result, "callback", "access_denied")  # as openid-client reads it


def revoke_by_cli(live_idp, id_number: str, uscc: str = USCC) -> dict:
    out = live_idp.run_cli("org", "revoke", "--uscc", uscc, "--id-number", id_number)
    assert len(out["revoked"]) == 1, out
    return out


def audit_events(live_idp, since: float) -> list[dict]:
    """The audit log from ``since`` on (``idp audit export`` chains what is pending first)."""
    res = subprocess.run([*idp_command(), "audit", "export", "--since", str(int(since))],
                         env=live_idp.env, cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def members_by_cli(live_idp, uscc: str = USCC) -> list[dict]:
    (org,) = [o for o in live_idp.run_cli("org", "list") if o["uscc"] == uscc]
    return org["members"]


# -- the CLI ------------------------------------------------------------------------------


def test_cli_refuses_wrong_codes_past_dates_and_unknown_scopes(live_idp, world):
    wrong = USCC[:-1] + ("4" if USCC[-1] != "4" else "5")
    yesterday = (dt.datetime.now(CST).date() - dt.timedelta(days=1)).isoformat()
    grant = ("org", "grant", "--uscc", USCC, "--id-number", OUTSIDER_ID, "--role", "agent")
    results = cli_all(
        live_idp, ("id", "check", wrong),
        ("org", "add", "--uscc", wrong, "--name", "错号公司", "--legal-rep", REP_ID),
        (*grant, "--scope", "tax", "--until", "2020-01-31"),
        (*grant, "--scope", "tax", "--until", yesterday),
        (*grant, "--scope", "lottery"), check=False)
    assert all(rc != 0 for rc, _out, _err in results), results
    errors = [err for _rc, _out, err in results]
    assert "check character should be" in errors[0], errors[0]
    assert "invalid credit code" in json.loads(errors[1])["error"], errors[1]
    assert json.loads(errors[2])["error"] == "the appointment must end in the future"
    assert json.loads(errors[3])["error"] == "the appointment must end in the future"
    assert "scopes must be some of" in json.loads(errors[4])["error"], errors[4]
    # Nothing of it was recorded: the outsider still holds no appointment.
    assert masked_id(OUTSIDER_ID) not in {m["id_number"] for m in members_by_cli(live_idp)}


# -- the relying party ----------------------------------------------------------------------


@pytest.mark.node
def test_agent_acts_for_the_enterprise_until_the_cli_revokes(node, live_idp, world):
    with relying_party(node, live_idp, world, "org", AGENT_ID, org_choice=USCC,
                       pause=True) as rp:
        rp.wait("paused", "revoke")
        out = revoke_by_cli(live_idp, AGENT_ID)  # the legal representative's decision
        assert out["revoked"] == [world["agent_membership"]] and out["grants_ended"] >= 1, out
        rp.send()
        r = rp.result()
    assert r["completed"] is True, explain(r, "flow did not complete")

    a = ok(r, "authorize")
    assert a["org_select"] == {"options": [USCC]}, a  # asked, though there is only one
    assert "GET /org/select 200" in a["trail"] and "POST /org/select 302" in a["trail"], a
    cb = ok(r, "callback")  # openid-client validated the ID token
    expected = org_claim("agent", ["tax"])
    assert cb["id_token_claims"]["org"] == expected, cb
    assert cb["has_refresh_token"] and cb["scope"] == "openid org offline_access", cb
    assert ok(r, "userinfo")["org"] == expected
    assert ok(r, "introspect_access")["active"] is True
    assert ok(r, "introspect_refresh")["active"] is True

    # Revoked while the tokens were live: none of them is worth anything any more.
    refused(r, "refresh_after_revoke", "invalid_grant", 400)
    assert ok(r, "introspect_access_after_revoke")["active"] is False
    assert ok(r, "introspect_refresh_after_revoke")["active"] is False
    refused(r, "userinfo_after_revoke", "invalid_token", 401)
    (m,) = [m for m in members_by_cli(live_idp) if m["membership"] == world["agent_membership"]]
    assert m["valid"] is False and m["revoked_at"]


@pytest.mark.node
def test_person_without_appointment_is_refused_and_the_rp_gets_access_denied(node, live_idp,
                                                                           world):
    r = run_rp(node, live_idp, world, "org_refused", OUTSIDER_ID, follow_refusal=True)
    assert r["completed"] is True, explain(r, "flow did not complete")
    check_refusal(r, live_idp.issuer, None)
    assert ok(r, "authorize")["trail"][-2:] == ["GET /authorize 403",
                                                "GET /rp/org-callback (back link)"]


@pytest.mark.node
def test_login_hint_naming_an_enterprise_decides_or_refuses(node, live_idp, world):
    # The legal representative of USCC, hinted at USCC: no selection page, acts for it.
    r = run_rp(node, live_idp, world, "org", REP_ID, login_hint=USCC)
    a = ok(r, "authorize")
    assert "org_select" not in a and "/org/select" not in " ".join(a["trail"]), a
    assert ok(r, "callback")["id_token_claims"]["org"] == org_claim("legal_rep", ["all"])

    # Hinted at a (valid) credit code the person cannot act for: refused, whatever else
    # the person may act for.
    r = run_rp(node, live_idp, world, "org_refused", REP_ID, login_hint=STRANGER_USCC,
               follow_refusal=True)
    check_refusal(r, live_idp.issuer, STRANGER_USCC)


def _expire(live_idp, membership_id: str) -> None:
    """Move the appointment's end into the past (the clock, as far as it is concerned)."""
    with psycopg.connect(live_idp.env["DATABASE_URL"], autocommit=True) as conn:
        n = conn.execute("UPDATE membership SET valid_until = extract(epoch FROM now()) - 60 "
                         "WHERE id = %s AND valid_until IS NOT NULL", (membership_id,)).rowcount
    assert n == 1


@pytest.mark.node
def test_expired_appointment_is_not_offered_and_is_refused(node, live_idp, world):
    until = (dt.datetime.now(CST).date() + dt.timedelta(days=30)).isoformat()
    m = live_idp.run_cli("org", "grant", "--uscc", USCC, "--id-number", EXPIRING_ID, "--role",
                         "agent", "--scope", "tax", "--scope", "customs", "--until", until)
    live_idp.run_cli("org", "grant", "--uscc", ORG_B, "--id-number", EXPIRING_ID, "--role",
                     "agent", "--scope", "housing")

    # While valid: offered, and the tokens work; then it runs out under them.
    with relying_party(node, live_idp, world, "org", EXPIRING_ID, org_choice=USCC,
                       pause=True) as rp:
        rp.wait("paused", "revoke")
        _expire(live_idp, m["membership"])
        rp.send()
        r = rp.result()
    assert sorted(ok(r, "authorize")["org_select"]["options"]) == sorted([USCC, ORG_B])
    assert ok(r, "callback")["id_token_claims"]["org"] == org_claim("agent", ["customs", "tax"])
    assert ok(r, "introspect_access")["active"] is True
    refused(r, "refresh_after_revoke", "invalid_grant", 400)
    assert ok(r, "introspect_access_after_revoke")["active"] is False
    (row,) = [x for x in members_by_cli(live_idp) if x["membership"] == m["membership"]]
    assert row["valid"] is False and row["revoked_at"] is None  # expired, not revoked

    # Expired: no longer offered (only ORG_B is) ...
    r = run_rp(node, live_idp, world, "org", EXPIRING_ID, org_choice=ORG_B)
    assert ok(r, "authorize")["org_select"] == {"options": [ORG_B]}, explain(r, "offered")
    assert ok(r, "callback")["id_token_claims"]["org"] == org_claim(
        "agent", ["housing"], ORG_B, ORG_B_NAME)
    # ... and refused when asked for by name.
    r = run_rp(node, live_idp, world, "org_refused", EXPIRING_ID, login_hint=USCC,
               follow_refusal=True)
    check_refusal(r, live_idp.issuer, USCC)


# -- the account pages over plain HTTP ------------------------------------------------------


def sign_in_at(live_idp, path: str, id_number: str) -> tuple[requests.Session, str]:
    """Open ``path`` without a session, sign in on the page it sends us to, and return
    the session and where the sign-in sent us."""
    s = requests.Session()
    r = s.get(live_idp.url(path), allow_redirects=False, timeout=10)
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/login", r.headers
    login = s.get(live_idp.url(r.headers["Location"]), timeout=10)
    assert login.status_code == 200 and 'name="password"' in login.text
    r = s.post(live_idp.url("/login"), data={**hidden_fields(login.text), "username": id_number,
                                             "password": PASSWORD},
               allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:500]
    return s, r.headers["Location"]


def page_error(html: str) -> str:
    m = re.search(r'<p class="error" role="alert"[^>]*>(.*?)</p>', html, re.S)
    return m.group(1).strip() if m else ""


def test_enterprise_page_is_for_its_managers_and_explains_refusals(live_idp, world):
    # Signed out: to the sign-in page, and straight back afterwards.
    rep, back = sign_in_at(live_idp, f"/account/org/{USCC}", REP_ID)
    assert back == f"/account/org/{USCC}"
    page = rep.get(live_idp.url(back), timeout=10)
    assert page.status_code == 200 and ORG_NAME in page.text
    for number, name in PEOPLE:  # nobody's full ID number or name on the page
        assert number not in page.text and (name not in page.text), name
    assert masked_id(REP_ID) in page.text and masked_name(REP_NAME) in page.text
    form = hidden_fields(page.text)
    assert form.get("csrf_token")

    def appoint(**fields):
        data = {"csrf_token": form["csrf_token"], "role": "agent", "scopes": ["tax"], **fields}
        return rep.post(live_idp.url(f"/account/org/{USCC}/members"), data=data,
                        allow_redirects=False, timeout=10)

    refusals = [
        (appoint(id_number=OUTSIDER_ID, until="2020-01-31"), "授权截止日期不能早于今天。"),
        (appoint(id_number=UNREGISTERED_ID), "该证件号码尚未在本平台注册，请先请本人注册账号。"),
        (appoint(id_number=OUTSIDER_ID[:-1] + "1"), "证件号码有误：校验码错误：最后一位应为 X"),
        (appoint(id_number=OUTSIDER_ID, scopes=[]), "请至少选择一项业务范围。"),
        (appoint(id_number=OUTSIDER_ID, scopes=["lottery"]), "请至少选择一项业务范围。"),
        (appoint(id_number=OUTSIDER_ID, until="31/12/2030"), "截止日期应写作“年-月-日”"),
    ]
    for resp, message in refusals:
        assert resp.status_code == 400 and message in page_error(resp.text), (
            message, resp.status_code, page_error(resp.text))
        assert "Traceback" not in resp.text and OUTSIDER_ID not in resp.text
    # No CSRF token, no appointment.
    resp = rep.post(live_idp.url(f"/account/org/{USCC}/members"),
                    data={"id_number": OUTSIDER_ID, "role": "agent", "scopes": ["tax"]},
                    allow_redirects=False, timeout=10)
    assert resp.status_code == 400 and "页面已过期" in resp.text
    assert masked_id(OUTSIDER_ID) not in {m["id_number"] for m in members_by_cli(live_idp)}

    # In English on request.
    page = rep.get(live_idp.url(f"/account/org/{USCC}?lang=en"), timeout=10)
    assert "People appointed" in page.text and "Sign-in history" in page.text
    assert "授权人员" not in page.text and "legal representative" in page.text
    rep.get(live_idp.url("/account/?lang=zh"), timeout=10)

    # Not a manager (an agent, or no one at all): 403 and a plain explanation; the same
    # answer for a credit code that is not registered.
    outsider, back = sign_in_at(live_idp, "/account/", OUTSIDER_ID)
    assert back == "/account/"
    mine = outsider.get(live_idp.url(back), timeout=10)
    assert mine.status_code == 200 and masked_name(OUTSIDER_NAME) in mine.text
    assert masked_id(OUTSIDER_ID) in mine.text and OUTSIDER_ID not in mine.text
    assert 'id="no-orgs"' in mine.text
    for uscc in (USCC, STRANGER_USCC, "not-a-code"):
        resp = outsider.get(live_idp.url(f"/account/org/{uscc}"), timeout=10)
        assert resp.status_code == 403 and "无权管理该企业" in resp.text, uscc
        assert "只有企业的法定代表人或管理员可以查看和管理其授权人员" in page_error(resp.text)
        assert ORG_NAME not in resp.text
    token = hidden_fields(mine.text).get("csrf_token") or hidden_fields(
        outsider.get(live_idp.url("/"), timeout=10).text)["csrf_token"]
    resp = outsider.post(live_idp.url(f"/account/org/{USCC}/members"),
                         data={"csrf_token": token, "id_number": OUTSIDER_ID, "role": "agent",
                               "scopes": ["tax"]}, allow_redirects=False, timeout=10)
    assert resp.status_code == 403  # no appointing oneself into an enterprise
    assert masked_id(OUTSIDER_ID) not in {m["id_number"] for m in members_by_cli(live_idp)}


# -- the enterprise page in a browser ----------------------------------------------------


@pytest.mark.browser
@pytest.mark.node
def test_legal_rep_appoints_and_revokes_on_the_enterprise_page(node, live_idp, world, browser):
    from playwright.sync_api import expect

    from .browser import KIOSK_VIEWPORT, PHONE, assert_fits_width, open_context, screenshot, sign_in

    started = time.time() - 1
    with (open_context(browser, **PHONE) as phone, open_context(browser) as agent_ctx,
          contextlib.ExitStack() as cleanup):
        page = phone.new_page()
        # Signed out: to the sign-in page, and back to the enterprise's page.
        sign_in(page, live_idp.base_url, f"/account/org/{USCC}", REP_ID, PASSWORD)
        expect(page.locator("h1")).to_have_text(ORG_NAME)
        expect(page.locator("#members li[data-role=legal_rep] .person")).to_have_text(
            masked_name(REP_NAME))
        # Only the legal representative is offered to appoint administrators.
        expect(page.locator("input[name=role][value=admin]")).to_have_count(1)

        # A mistake first: the page says what is wrong, in Chinese.
        page.fill("#id_number", UNREGISTERED_ID)
        page.check("input[name=scopes][value=tax]")
        page.click("#appoint-submit")
        expect(page.locator("#form-error")).to_have_text(
            "该证件号码尚未在本平台注册，请先请本人注册账号。")

        # Appoint the new agent: tax and social security, until a day next year.
        last_day = (dt.datetime.now(CST).date() + dt.timedelta(days=365)).isoformat()
        page.fill("#id_number", NEW_AGENT_ID)
        page.check("input[name=role][value=agent]")
        page.check("input[name=scopes][value=tax]")
        page.check("input[name=scopes][value=social-security]")
        page.fill("#until", last_day)
        page.click("#appoint-submit")
        expect(page.locator("[role=status]")).to_have_text(
            f"已授权 {masked_name(NEW_AGENT_NAME)}（{masked_id(NEW_AGENT_ID)}）为经办人。")
        row = page.locator("#members li", has_text=masked_id(NEW_AGENT_ID))
        expect(row).to_have_attribute("data-status", "valid")
        expect(row.locator(".person")).to_have_text(masked_name(NEW_AGENT_NAME))
        expect(row.locator(".role")).to_have_text("经办人")
        expect(row.locator(".scopes")).to_have_text("税务、社会保险")
        expect(row.locator(".until")).to_have_text(last_day)
        expect(row.locator(".status")).to_have_text("有效")
        membership = row.get_attribute("data-membership")
        html = page.content()
        for number, name in PEOPLE:
            assert number not in html and name not in html, name

        # The new agent sees the enterprise on their own page ...
        agent = agent_ctx.new_page()
        sign_in(agent, live_idp.base_url, "/account/", NEW_AGENT_ID, PASSWORD)
        listed = agent.locator(f"#orgs li[data-uscc='{USCC}']")
        expect(listed).to_contain_text(ORG_NAME)
        expect(listed).to_contain_text("经办人")
        expect(listed.locator("a.button")).to_have_count(0)  # agents do not manage
        # ... and signs in to the application for it; the application keeps the tokens.
        rp = cleanup.enter_context(relying_party(node, live_idp, world, "org", NEW_AGENT_ID,
                                                 org_choice=USCC, pause=True))
        rp.wait("paused", "revoke")

        # That sign-in is in the enterprise's history: newest first, masked, CST.
        page.reload()
        first = page.locator("#history li").first
        expect(first.locator(".who")).to_have_text(masked_name(NEW_AGENT_NAME))
        expect(first.locator(".client")).to_have_text(CLIENT_NAME)
        expect(first.locator(".role")).to_have_text("经办人")
        when = dt.datetime.strptime(first.locator("time").inner_text(), "%Y-%m-%d %H:%M:%S")
        now_cst = dt.datetime.now(CST).replace(tzinfo=None)
        assert abs((now_cst - when).total_seconds()) < 120, (when, now_cst)
        assert NEW_AGENT_NAME not in page.content()

        # On a phone: nothing scrolls sideways, the buttons are big enough to touch.
        screenshot(page, "enterprise-phone-390x844")
        assert_fits_width(page, "phone")
        for selector in ("#appoint-submit", "button.revoke", "label.choice"):
            box = page.locator(selector).first.bounding_box()
            assert box["height"] >= 44 and box["x"] + box["width"] <= 390, (selector, box)

        # Revoke: the page says so, the row shows it, and the live tokens die with it.
        row.locator("button.revoke").click()
        expect(page.locator("[role=status]")).to_contain_text(
            f"已撤销 {masked_name(NEW_AGENT_NAME)}（{masked_id(NEW_AGENT_ID)}）的经办人授权")
        expect(row).to_have_attribute("data-status", "revoked")
        expect(row.locator(".status")).to_have_text("已撤销")
        expect(row.locator("button.revoke")).to_have_count(0)
        rp.send()
        r = rp.result()
        assert ok(r, "callback")["id_token_claims"]["org"] == org_claim(
            "agent", ["social-security", "tax"])
        assert ok(r, "introspect_access")["active"] is True
        refused(r, "refresh_after_revoke", "invalid_grant", 400)
        assert ok(r, "introspect_access_after_revoke")["active"] is False
        refused(r, "userinfo_after_revoke", "invalid_token", 401)
        # Appointed and revoked through idp.orgs, by the legal representative in person
        # (not the operator's CLI), and the revocation ended the agent's grant.
        events = audit_events(live_idp, started)
        by_membership = {e["event"]: e for e in events
                         if (e.get("details") or {}).get("membership") == membership}
        assert {"org.grant", "org.act", "org.revoke"} <= set(by_membership), by_membership
        granted, revoked = by_membership["org.grant"], by_membership["org.revoke"]
        assert granted["subject"] == revoked["subject"] == f"org:{USCC}"
        assert granted["actor"] == revoked["actor"] and not revoked["actor"].startswith("cli:")
        assert granted["details"]["scopes"] == ["social-security", "tax"]
        assert any(e["event"] == "grant.revoked" and e["client_id"] == CLIENT_ID
                   and e["details"].get("reason") == "organisation membership revoked"
                   for e in events if e["ts"] >= by_membership["org.act"]["ts"]), [
            (e["event"], e["client_id"], e["details"]) for e in events]

        # The agent's own page no longer lists the enterprise.
        agent.reload()
        expect(agent.locator(f"#orgs li[data-uscc='{USCC}']")).to_have_count(0)
        expect(agent.locator("#no-orgs")).to_be_visible()
        # The history keeps the agent's earlier sign-in, still masked.
        page.reload()
        expect(page.locator("#history li .who", has_text=masked_name(NEW_AGENT_NAME))
               ).not_to_have_count(0)
        assert_fits_width(page, "phone, after revocation")

        # A kiosk (same signed-in browser, larger screen): no sideways scroll either.
        with open_context(browser, viewport=KIOSK_VIEWPORT,
                          storage_state=phone.storage_state()) as kiosk:
            kpage = kiosk.new_page()
            kpage.goto(live_idp.url(f"/account/org/{USCC}"))
            expect(kpage.locator("h1")).to_have_text(ORG_NAME)
            screenshot(kpage, "enterprise-kiosk-1080x1920")
            assert_fits_width(kpage, "kiosk")
            assert kpage.locator("#appoint-submit").bounding_box()["height"] >= 72
