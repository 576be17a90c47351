"""Headless Chromium, two browsers: a website's login page shows a QR code; the app
simulator (/demo/app, a public client signed in with code + PKCE) scans and approves
it; the website's browser lands back at the website signed in, with ``amr`` saying
"qr" and the app's level as the ceiling."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from .browser import PHONE, fill_login, landing_site, open_context
from .conftest import DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD, LiveIdP, provider, running
from .oauth import pkce_pair, query, redeem_code

pytestmark = pytest.mark.browser

SITE_NAME = "扫码演示网站"


@pytest.fixture(scope="module")
def qr_idp(tmp_path_factory) -> Iterator[tuple[LiveIdP, dict]]:
    with provider(tmp_path_factory, "qr-idp", span=2) as idp:
        port = idp.port
        idp.run_cli("init", "--demo")  # the demo citizen and the demo-app client
        # The website is only its redirect URI: a tiny server on port + 1 that says "ok".
        site = idp.run_cli("client", "add", "--client-id", "qr-site", "--name", SITE_NAME,
                           "--redirect-uri", f"http://127.0.0.1:{port + 1}/cb",
                           "--first-party")
        with landing_site(port + 1), running(idp):
            yield idp, site


def test_website_signs_in_by_scanning_with_the_app(qr_idp, browser):
    idp, site = qr_idp
    redirect_uri = site["redirect_uris"][0]
    with open_context(browser) as website, open_context(browser, **PHONE) as phone:
        # The website's browser: an authorization request, then the login page's QR code.
        page = website.new_page()
        verifier, challenge = pkce_pair()
        page.goto(idp.url("/authorize?" + urlencode({
            "response_type": "code", "client_id": "qr-site", "redirect_uri": redirect_uri,
            "scope": "openid profile", "state": "s-1", "nonce": "n-1",
            "code_challenge": challenge, "code_challenge_method": "S256"})))
        page.wait_for_url(idp.url("/login?**"))
        page.click("#qr-start")
        expect(page.locator("#qr-login")).to_have_attribute("data-state", "pending")
        expect(page.locator("#qr-img")).to_have_attribute("src", re.compile(r"^data:image/svg"))
        qr_url = page.locator("#qr-link").text_content()
        assert qr_url.startswith(idp.issuer + "/qr/s/")

        # The phone: sign in to the app (code + PKCE), which leaves no browser session.
        app = phone.new_page()
        app.goto(idp.url("/demo/app"))
        expect(app.locator("#app-sim")).to_have_attribute("data-signed-in", "no")
        app.click("#sim-login")
        app.wait_for_url(idp.url("/login?**"))
        fill_login(app, DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD)
        expect(app.locator("#app-sim")).to_have_attribute("data-signed-in", "yes")
        expect(app.locator("#sim-who")).to_contain_text("acr L2")
        expect(app.locator("#sim-empty")).to_be_visible()
        _wait_for(lambda: "idp_sso" not in {c["name"] for c in phone.cookies(idp.base_url)},
                  "the app simulator left an SSO session in its browser")

        # Scan (paste the code's URL), see who asks, approve.
        app.fill("#sim-ticket", qr_url)
        app.click("#sim-scan")
        item = app.locator(".sim-item[data-kind=qr]")
        expect(item).to_contain_text(f"在「{SITE_NAME}」扫码登录？")
        expect(page.locator("#qr-login")).to_have_attribute("data-state", "scanned")
        approved_at = time.monotonic()
        item.locator(".sim-approve").click()

        # The website's browser arrives back at the website within a few seconds.
        page.wait_for_url(redirect_uri + "**", timeout=5_000)
        assert time.monotonic() - approved_at < 5
        expect(app.locator("#sim-empty")).to_be_visible()
        q = query(page.url)
        assert q["state"] == "s-1"
        claims = redeem_code(idp, "qr-site", site["client_secret"], q["code"], redirect_uri,
                             verifier)
        # The demo citizen is a real-name (L3) account, but the app signed in with a
        # password only: L2, and a QR sign-in from it is L2 too.
        assert claims["amr"] == ["pwd", "qr"] and claims["acr"] == "L2"
        assert claims["nonce"] == "n-1" and claims["channel"] == "web"
        assert "idp_sso" in {c["name"] for c in website.cookies(idp.base_url)}


def _wait_for(check, message: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)
