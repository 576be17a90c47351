"""Scan-to-login: a ticket bound to the browser that showed it, approved on the app,
used once; the session it starts is never stronger than the app's."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.channels import approvals
from idp.channels.qr import coarse_network, device_summary
from tests.helpers import (
    authorize_url,
    exchange,
    follow_login,
    form_fields,
    make_client,
    pkce_pair,
    query,
)
from tests.integration.test_app_api import app_tokens, bearer, events, expire, make_app_client


class Website:
    """One browser on the login page of a website's pending authorization."""

    def __init__(self, ctx, rp):
        self.http = ctx.test_client()
        self.rp = rp
        self.verifier, challenge = pkce_pair()
        resp = self.http.get(authorize_url(rp, code_challenge=challenge,
                                           code_challenge_method="S256", nonce="n-qr"))
        assert urlsplit(resp.headers["Location"]).path == "/login"
        self.rid = query(resp.headers["Location"])["rid"]
        page = self.http.get(resp.headers["Location"]).get_data(as_text=True)
        assert 'id="qr-login"' in page
        self.csrf = form_fields(page)["csrf_token"]

    def ticket(self, **over):
        body = {"rid": self.rid, **over}
        return self.http.post("/qr/ticket", json=body, headers={"X-CSRFToken": self.csrf})

    def status(self, ticket):
        return self.http.get(f"/qr/status/{ticket}")

    def complete(self, ticket):
        return self.http.post("/qr/complete", data={"csrf_token": self.csrf, "ticket": ticket})


@pytest.fixture
def site(ctx, person):
    return Website(ctx, make_client())


@pytest.fixture
def app_token(ctx, person):
    make_app_client()
    return app_tokens(ctx)["access_token"]


def new_ticket(site) -> str:
    resp = site.ticket()
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["ticket"]


def scan_and_decide(client, token, ticket, decision="approve"):
    assert client.post("/api/app/qr/scan", headers=bearer(token),
                       json={"ticket": ticket}).status_code == 200
    resp = client.post(f"/api/app/requests/{ticket}", headers=bearer(token),
                       json={"decision": decision})
    assert resp.status_code == 200


def test_scan_approve_and_sign_in_resumes_the_authorization(client, ctx, person, site,
                                                             app_token):
    # A real-name (L3) account: a password plus the QR scan would prove L3 on their own,
    # but the app signed in with a password only (L2), and the app's level is the ceiling.
    person.assurance_level = "L3"
    from idp.extensions import db

    db.session.commit()
    resp = site.ticket()
    body = resp.get_json()
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    ticket = body["ticket"]
    assert body["url"] == f"{ctx.config['ISSUER']}/qr/s/{ticket}"
    assert body["qr"].startswith("data:image/svg+xml") and body["expires_in"] == 120
    assert approvals.get(ticket).extra["client_name"] == "测试应用 rp1"

    assert site.status(ticket).get_json()["state"] == "pending"
    assert client.post("/api/app/qr/scan", headers=bearer(app_token),
                       json={"ticket": body["url"]}).status_code == 200
    assert site.status(ticket).get_json()["state"] == "scanned"
    # Not yet approved: completing now changes nothing and keeps the ticket usable.
    assert site.complete(ticket).status_code == 409
    assert client.post(f"/api/app/requests/{ticket}", headers=bearer(app_token),
                       json={"decision": "approve"}).status_code == 200
    assert site.status(ticket).get_json()["state"] == "approved"

    done = site.complete(ticket)
    assert done.status_code == 302
    assert urlsplit(done.headers["Location"]).path == "/authorize"
    # On to the website (through its consent page), no password asked.
    back = follow_login(site.http, done, password="not-asked")
    assert back.headers["Location"].startswith(site.rp.redirect_uri)
    q = query(back.headers["Location"])
    tokens = exchange(site.http, site.rp, q["code"], site.verifier).get_json()
    keys = KeySet.import_key_set(client.get("/jwks").get_json())
    claims = jwt.decode(tokens["id_token"], keys, algorithms=["ES256"]).claims
    assert claims["amr"] == ["pwd", "qr"] and claims["acr"] == "L2"
    assert claims["channel"] == "web" and claims["nonce"] == "n-qr"

    # Single use: the same ticket cannot sign in again, here or anywhere.
    again = site.complete(ticket)
    assert again.status_code == 409
    [login] = [e for e in events("login.success") if "qr" in e.details["amr"]]
    assert login.subject == person.id and login.details["acr"] == "L2"


def test_a_ticket_leaked_to_another_browser_is_worthless(client, ctx, person, site,
                                                         app_token):
    ticket = new_ticket(site)
    thief = Website(ctx, site.rp)
    assert thief.status(ticket).status_code == 404
    scan_and_decide(client, app_token, ticket)
    assert thief.status(ticket).status_code == 404
    refused = thief.complete(ticket)
    assert refused.status_code == 403 and "idp_sso" not in refused.headers.get(
        "Set-Cookie", "")
    assert events("qr.refused")
    # Its owner still can: the refused attempt did not use it up.
    assert site.complete(ticket).status_code == 302


def test_denied_on_the_app(client, ctx, person, site, app_token):
    ticket = new_ticket(site)
    scan_and_decide(client, app_token, ticket, "deny")
    assert site.status(ticket).get_json()["state"] == "denied"
    resp = site.complete(ticket)
    assert resp.status_code == 403 and "拒绝" in resp.get_data(as_text=True)
    assert "idp_sso" not in resp.headers.get("Set-Cookie", "")


def test_expired_ticket(client, ctx, person, site, app_token):
    ticket = new_ticket(site)
    scan_and_decide(client, app_token, ticket)
    expire(ticket)
    assert site.status(ticket).get_json()["state"] == "expired"
    resp = site.complete(ticket)
    assert resp.status_code == 410
    # The page offers the same sign-in request again (for a new code).
    assert f"rid={site.rid}" in resp.get_data(as_text=True)


def test_ticket_needs_csrf_a_live_request_and_is_rate_limited(ctx, person, site):
    resp = site.http.post("/qr/ticket", json={"rid": site.rid})
    assert resp.status_code == 400
    resp = site.ticket(rid="made-up")
    assert resp.status_code == 400 and resp.get_json()["error"] == "expired_request"
    limit = ctx.config["QR_TICKETS_PER_MINUTE"]
    codes = [site.ticket().status_code for _ in range(limit + 1)]
    assert codes[:limit] == [200] * limit and codes[-1] == 429


def test_login_page_without_a_pending_request_lands_home(client, ctx, person, app_token):
    browser = ctx.test_client()
    page = browser.get("/login").get_data(as_text=True)
    csrf = form_fields(page)["csrf_token"]
    resp = browser.post("/qr/ticket", json={}, headers={"X-CSRFToken": csrf})
    ticket = resp.get_json()["ticket"]
    assert approvals.get(ticket).extra["client_name"] == "统一身份认证平台"
    scan_and_decide(client, app_token, ticket)
    done = browser.post("/qr/complete", data={"csrf_token": csrf, "ticket": ticket})
    assert done.status_code == 302 and urlsplit(done.headers["Location"]).path == "/"
    home = browser.get("/").get_data(as_text=True)
    assert "退出登录" in home


def test_scan_landing_page_explains_and_binds_nothing(client, ctx, site):
    ticket = new_ticket(site)
    resp = client.get(f"/qr/s/{ticket}")
    assert resp.status_code == 200 and re.search("App", resp.get_data(as_text=True))
    assert approvals.get(ticket).person_id is None


CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                  "Gecko) Chrome/124.0.0.0 Safari/537.36")


def test_ticket_records_the_asking_browsers_network_and_device(client, ctx, person,
                                                               app_token):
    """QRLJacking: the attacker's browser asks for the ticket and the victim scans it.
    The ticket keeps that browser's coarse network and device for the app to show, and
    a scan from another network is flagged."""
    attacker = Website(ctx, make_client())
    attacker.http.environ_base.update(REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT=CHROME_WINDOWS)
    ticket = new_ticket(attacker)
    extra = approvals.get(ticket).extra
    assert extra["network"] == "203.0.113.0/24" and extra["network_shown"] == "203.0.113.*"
    assert extra["device"] == "Chrome · Windows"

    victim_phone = {"REMOTE_ADDR": "198.51.100.23"}
    resp = client.post("/api/app/qr/scan", headers=bearer(app_token), json={"ticket": ticket},
                       environ_base=victim_phone)
    shown = resp.get_json()["request"]
    assert shown["network"] == "203.0.113.*" and shown["device"] == "Chrome · Windows"
    assert shown["different_network"] is True
    [listed] = client.get("/api/app/requests", headers=bearer(app_token)).get_json()["requests"]
    assert listed["different_network"] is True and listed["device"] == "Chrome · Windows"
    assert "203.0.113.7" not in json.dumps(shown) + json.dumps(listed)

    # The person's own computer on the same (office, home) network: no alarm.
    own = Website(ctx, make_client("rp2"))
    own.http.environ_base.update(REMOTE_ADDR="203.0.113.200")
    mine = new_ticket(own)
    resp = client.post("/api/app/qr/scan", headers=bearer(app_token), json={"ticket": mine},
                       environ_base={"REMOTE_ADDR": "203.0.113.45"})
    assert resp.get_json()["request"]["different_network"] is False
    assert resp.get_json()["request"]["device"] is None  # no User-Agent: nothing to claim


@pytest.mark.parametrize("addr, network, shown", [
    ("203.0.113.7", "203.0.113.0/24", "203.0.113.*"),
    ("::ffff:203.0.113.7", "203.0.113.0/24", "203.0.113.*"),
    ("2001:db8:abcd:12::1", "2001:db8:abcd::/48", "2001:db8:abcd:*"),
    ("2001:0db8:0000:ffff::9", "2001:db8::/48", "2001:db8:0:*"),
])
def test_coarse_network(addr, network, shown):
    assert coarse_network(addr) == (network, shown)


@pytest.mark.parametrize("addr", [None, "", "not-an-ip", "203.0.113"])
def test_coarse_network_of_nonsense_is_none(addr):
    assert coarse_network(addr) is None


@pytest.mark.parametrize("ua, summary", [
    (CHROME_WINDOWS, "Chrome · Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", "Edge · Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4 Safari/605.1.15", "Safari · macOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
     "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "Safari · iOS"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36", "Chrome · Android"),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
     "Firefox · Linux"),
    ("Mozilla/5.0 (Linux; Android 13; V2203A) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 MicroMessenger/8.0.47",
     "WeChat · Android"),
    ("curl/8.5.0", None),
    ("<script>alert(1)</script> Windows", "Windows"),  # fixed names only, never echoed
    (None, None),
])
def test_device_summary(ua, summary):
    assert device_summary(ua) == summary


def test_app_simulator_shows_where_a_qr_sign_in_would_happen(client, ctx):
    page = client.get("/demo/app").get_data(as_text=True)
    assert "请确认是您本人正在该设备上登录；如有人要求您扫码，请拒绝" in page
    assert "data-msg-origin-device=" in page and "data-msg-origin-network=" in page
    assert "data-msg-different-network=" in page
    script = client.get("/static/app_sim.js").get_data(as_text=True)
    assert "r.different_network" in script and "msgQrWarning" in script
