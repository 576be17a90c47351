"""Hall counters and hotlines end to end: ``idp serve`` on PostgreSQL + Redis, an
independent CIBA client (openid-client on Node, ciba_flow.mjs), the citizen's app as a
real public client approving through the app API, and the clerk/agent demo consoles
driven over HTTP. Nothing of the provider runs in the test process."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
import requests

from .conftest import (
    DEMO_CITIZEN_ID,
    DEMO_CITIZEN_PASSWORD,
    DEMO_PHONE,
    LiveIdP,
    provider,
    running,
)
from .node_script import NodeScript
from .oauth import hidden_fields, pkce_pair, query
from .rp_result import explain, ok, refused

pytestmark = pytest.mark.node

CIBA = "urn:openid:params:grant-type:ciba"
CITIZEN_ID = "11010519491231002X"
CITIZEN_PASSWORD = "E2e-Password-2026"
CITIZEN_PHONE = "13912345678"
APP_REDIRECT = "http://127.0.0.1/app/cb"


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """A provider with a 2-second CIBA interval, so the consoles' polling is quick."""
    with provider(tmp_path_factory, "ciba-idp", env={"IDP_CIBA_INTERVAL": "2"}) as live:
        live.run_cli("init", "--demo")  # the demo citizen and the demo hall/hotline clients
        with running(live):
            yield live


def add_client(idp: LiveIdP, client_id: str, *args: str) -> dict:
    return idp.run_cli("client", "add", "--client-id", client_id, "--first-party", *args)


@pytest.fixture(scope="module")
def world(idp):
    idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "王五", "--password",
                CITIZEN_PASSWORD, "--phone", CITIZEN_PHONE)
    hall = add_client(idp, "e2e-hall", "--channel", "hall", "--grant-type", CIBA)
    other = add_client(idp, "e2e-hall-2", "--channel", "hall", "--grant-type", CIBA)
    hotline = add_client(idp, "e2e-hotline", "--channel", "hotline", "--grant-type", CIBA)
    add_client(idp, "e2e-app", "--public", "--channel", "app", "--redirect-uri", APP_REDIRECT)
    creds = {name: {"client_id": c["client_id"], "client_secret": c["client_secret"]}
             for name, c in (("hall", hall), ("other", other), ("hotline", hotline))}
    return {"clients": creds}


def app_token(idp: LiveIdP, username: str, password: str) -> str:
    """Sign in to the citizen's app (a public client: code + PKCE, plain HTTP)."""
    s = requests.Session()
    verifier, challenge = pkce_pair()
    resp = s.get(idp.url("/authorize"), allow_redirects=False, timeout=10, params={
        "response_type": "code", "client_id": "e2e-app", "redirect_uri": APP_REDIRECT,
        "scope": "openid", "state": "s1", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    for _ in range(6):
        loc = resp.headers.get("Location", "")
        if loc.startswith(APP_REDIRECT):
            break
        assert resp.status_code in (302, 303), resp.text[:300]
        target = loc if loc.startswith("http") else idp.url(loc)
        if urlsplit(target).path == "/login":
            fields = hidden_fields(s.get(target, timeout=10).text)
            resp = s.post(idp.url("/login"), allow_redirects=False, timeout=10,
                          data={**fields, "username": username, "password": password})
        else:
            resp = s.get(target, allow_redirects=False, timeout=10)
    code = query(resp.headers["Location"])["code"]
    tok = requests.post(idp.url("/token"), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT,
        "client_id": "e2e-app", "code_verifier": verifier}).json()
    return tok["access_token"]


def app_decide(idp: LiveIdP, token: str, aid: str, decision: str, binding: str) -> None:
    """What the citizen's app does: list the waiting requests, check the clerk's
    phrase, tap approve or deny."""
    auth = {"Authorization": f"Bearer {token}"}
    listed = requests.get(idp.url("/api/app/requests"), headers=auth, timeout=10)
    assert listed.status_code == 200, listed.text
    mine = [r for r in listed.json()["requests"] if r["id"] == aid]
    assert mine and mine[0]["binding_message"] == binding and mine[0]["kind"] == "ciba", mine
    done = requests.post(idp.url(f"/api/app/requests/{aid}"), headers=auth, timeout=10,
                         json={"decision": decision})
    assert done.status_code == 200, done.text


def test_openid_client_polls_ciba_approved_denied_and_sms(node, idp, world):
    binding = "窗口 7 核对码 3381"
    config = {"issuer": idp.issuer, **world["clients"], "login_hint": CITIZEN_PHONE,
              "unknown_hint": "13600000000", "binding_message": binding,
              "acting_party": "clerk-0042", "agent": "agent-0007"}
    with NodeScript(node, "ciba_flow.mjs", config, idp=idp) as flow:
        token = app_token(idp, CITIZEN_ID, CITIZEN_PASSWORD)
        approve = flow.wait("waiting", "approve")
        app_decide(idp, token, approve["auth_req_id"], "approve", binding)
        flow.send()
        deny = flow.wait("waiting", "deny")
        app_decide(idp, token, deny["auth_req_id"], "deny", binding)
        flow.send()
        assert flow.wait("waiting", "sms_code")["sms_sent"] is True
        flow.send("code " + idp.sms_code(CITIZEN_PHONE, "ciba"))
        r = flow.result()
    assert r["completed"], explain(r, "flow did not complete")

    d = ok(r, "discovery")
    assert d["endpoint"] == idp.issuer + "/bc-authorize" and d["modes"] == ["poll", "ping"]
    assert d["user_code"] is False and d["grant_listed"] is True
    refused(r, "unknown_user", "unknown_user_id", 400)
    start = ok(r, "bc_authorize")
    assert start["has_id"] and start["expires_in"] == 300 and start["interval"] == 2
    refused(r, "poll_pending", "authorization_pending", 400)
    refused(r, "poll_too_fast", "slow_down", 400)
    refused(r, "poll_other_client", "invalid_grant", 400)

    got = ok(r, "poll_approved")  # openid-client validated signature, iss, aud, at_hash
    idt, at = got["id_token"], got["access_token"]
    act = {"sub": "clerk-0042", "client_id": "e2e-hall"}
    assert idt["iss"] == idp.issuer and idt["aud"] == ["e2e-hall"] and idt["name"] == "王五"
    assert idt["act"] == act and idt["channel"] == "hall"
    assert idt["acr"] == "L2" and idt["amr"] == ["pwd"]  # what the app's sign-in proved
    assert at["act"] == act and at["channel"] == "hall" and at["sub"] == idt["sub"]
    assert got["has_refresh_token"] is False
    refused(r, "poll_replayed", "invalid_grant", 400)
    refused(r, "poll_denied", "access_denied", 400)

    assert ok(r, "sms_sent")["body"]["phone"] != CITIZEN_PHONE
    assert ok(r, "sms_checked")["body"] == {"approved": True, "acr": "L2"}
    sms = ok(r, "poll_sms")
    assert sms["id_token"]["amr"] == ["sms"] and sms["id_token"]["acr"] == "L2"
    assert sms["id_token"]["act"] == {"sub": "agent-0007", "client_id": "e2e-hotline"}
    assert sms["id_token"]["channel"] == "hotline"


def _form(session: requests.Session, url: str) -> dict:
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.text[:300]
    return dict(re.findall(r'name="(csrf_token)" value="([^"]*)"', page.text))


def _console_request(idp: LiveIdP, kind: str, staff: str, binding: str):
    s = requests.Session()
    fields = _form(s, idp.url(f"/demo/{kind}"))
    resp = s.post(idp.url(f"/demo/{kind}"), allow_redirects=False, timeout=15, data={
        **fields, "login_hint": DEMO_CITIZEN_ID, "binding_message": binding,
        "acting_party": staff})
    assert resp.status_code == 302, resp.text[:500]
    status_url = idp.url(urlsplit(resp.headers["Location"]).path)
    first = s.get(status_url, timeout=15)
    assert first.status_code == 200 and first.headers.get("Refresh") == "2"
    assert binding in first.text
    return s, status_url


def _wait_done(s: requests.Session, url: str) -> str:
    for _ in range(20):
        page = s.get(url, timeout=15)
        if "Refresh" not in page.headers:
            return page.text
        time.sleep(0.5)
    raise AssertionError("the console kept waiting")


def test_demo_hall_console_with_app_approval(idp, world):
    token = app_token(idp, DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD)
    s, url = _console_request(idp, "hall", "clerk-0101", "窗口 2 核对码 5150")
    aid = next(r["id"] for r in requests.get(
        idp.url("/api/app/requests"), headers={"Authorization": f"Bearer {token}"},
        timeout=10).json()["requests"] if r["binding_message"] == "窗口 2 核对码 5150")
    app_decide(idp, token, aid, "approve", "窗口 2 核对码 5150")
    html = _wait_done(s, url)
    assert "核验通过" in html and "clerk-0101" in html and "demo-hall" in html
    assert "110105********1239" in html and DEMO_CITIZEN_ID not in html
    assert DEMO_PHONE not in html and "张三" not in html  # masked for the clerk's screen
    # Another browser that learns the URL sees nothing.
    assert requests.get(url, timeout=10).status_code == 404


def test_demo_hotline_console_with_sms_read_back(idp, world):
    s, url = _console_request(idp, "hotline", "agent-0202", "热线核对码 8080")
    fields = _form(s, url)
    sent = s.post(url + "/sms", data=fields, timeout=15)
    assert sent.status_code == 200 and "138****8000" in sent.text, sent.text[:500]
    code = idp.sms_code(DEMO_PHONE, "ciba")
    wrong = f"{(int(code) + 1) % 10**6:06d}"  # never the code sent
    fields = _form(s, url)
    bad = s.post(url + "/sms-code", data={**fields, "code": wrong}, timeout=15)
    assert "验证码错误" in bad.text
    fields = _form(s, url)
    s.post(url + "/sms-code", data={**fields, "code": code}, timeout=15)
    html = _wait_done(s, url)
    # Method and channel in words, not codes (issue 11: no raw codes shown to people).
    assert "核验通过" in html and "agent-0202" in html and "短信验证码" in html
    assert "政务服务热线" in html and "L2" in html and DEMO_PHONE not in html
