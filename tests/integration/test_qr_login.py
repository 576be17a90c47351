"""Scan-to-login: a ticket bound to the browser that showed it, approved on the app,
used once; the session it starts is never stronger than the app's."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.channels import approvals
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
