"""Headless Chromium against ``idp serve``: a relying party asks for acr L3; the demo
citizen (a real-name L3 account) signs in with the password (L2), steps up with the
SMS code from the dev outbox, and the relying party gets an ID token saying L3."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from .browser import PHONE_VIEWPORT, assert_fits_width, fill_login, open_context, screenshot
from .conftest import (
    DEMO_CITIZEN_ID,
    DEMO_CITIZEN_PASSWORD,
    DEMO_PHONE,
    LiveIdP,
    provider,
    running,
)
from .oauth import pkce_pair, query, redeem_code

pytestmark = pytest.mark.browser

REDIRECT = "https://rp.example/stepup/cb"  # never reached: the browser is stopped there


@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> Iterator[tuple[LiveIdP, str]]:
    with provider(tmp_path_factory, "stepup-idp") as live:
        live.run_cli("init", "--demo")
        secret = live.run_cli("client", "add", "--client-id", "stepup-rp", "--name", "高等级业务",
                              "--redirect-uri", REDIRECT, "--first-party")["client_secret"]
        with running(live):
            yield live, secret


def test_password_then_sms_step_up_gives_an_l3_id_token(idp, browser):
    live, secret = idp
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    url = live.url("/authorize?" + urlencode({
        "response_type": "code", "client_id": "stepup-rp", "redirect_uri": REDIRECT,
        "scope": "openid profile", "state": state, "nonce": nonce, "acr_values": "L3",
        "code_challenge": challenge, "code_challenge_method": "S256"}))

    with open_context(browser, viewport=PHONE_VIEWPORT) as ctx:
        landed: list[str] = []

        def at_rp(route):
            landed.append(route.request.url)
            route.fulfill(status=200, content_type="text/html", body="<p id=rp>ok</p>")

        ctx.route(REDIRECT + "**", at_rp)
        page = ctx.new_page()
        page.goto(url)
        fill_login(page, DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD)
        page.wait_for_url("**/login/step-up?**")
        expect(page.locator("main")).to_contain_text("L3")
        expect(page.locator("main")).to_contain_text("高等级业务")
        sms = page.locator("#stepup-sms")
        expect(sms).to_contain_text("138****8000")
        before = time.time() - 1
        sms.locator("button[type=submit]").click()
        code = live.sms_code(DEMO_PHONE, "stepup", after=before)
        screenshot(page, "step-up-sms-phone-390x844")
        page.fill("#sms-code", code)
        page.locator("#sms-code").press("Enter")
        page.wait_for_selector("#rp")
        assert_fits_width(page, "back at the relying party")

    q = query(landed[-1])
    assert q["state"] == state and q["iss"] == live.issuer and "code" in q
    claims = redeem_code(live, "stepup-rp", secret, q["code"], REDIRECT, verifier,
                         algorithms=["ES256", "RS256"])
    assert claims["acr"] == "L3" and set(claims["amr"]) == {"pwd", "sms"}
    assert claims["nonce"] == nonce and claims["aud"] in ("stepup-rp", ["stepup-rp"])
