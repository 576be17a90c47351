"""Headless Chromium with a virtual platform authenticator (Chrome DevTools Protocol
``WebAuthn`` domain) against the real ``idp serve``: sign in with a password, be told at
/account/passkeys that binding needs L3, step up with the SMS code from the dev outbox
and come back, bind a passkey, sign out, sign in to a relying party with the passkey
alone, then step a password session up to L3 with it; each time the ID token says how.

WebAuthn runs on plain http only for ``localhost``, so the issuer and every page are
``http://localhost:PORT``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from .browser import (
    PHONE_VIEWPORT,
    assert_fits_width,
    fill_login,
    landing_site,
    open_context,
    screenshot,
)
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

CLIENT_ID = "passkey-rp"
CLIENT_SECRET = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> Iterator[tuple[LiveIdP, str]]:
    with provider(tmp_path_factory, "passkey-idp", span=2, host="localhost") as live:
        callback = f"http://localhost:{live.port + 1}/cb"
        out = live.run_cli("init", "--demo")
        assert out["demo"]["citizen"]["id_number"] == DEMO_CITIZEN_ID
        live.run_cli("client", "add", "--client-id", CLIENT_ID, "--secret", CLIENT_SECRET,
                     "--redirect-uri", callback, "--first-party", "--name", "通行密钥测试应用")
        with landing_site(live.port + 1), running(live):
            yield live, callback


@pytest.fixture
def page(browser):
    # A phone's screen: the passkey pages must not scroll sideways there.
    with open_context(browser, viewport=PHONE_VIEWPORT) as context:
        yield context.new_page()


def _authenticator(page) -> tuple[object, str]:
    """A CTAP2 platform authenticator (fingerprint reader) that always verifies the user."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def _fits(page, name: str) -> None:
    screenshot(page, f"{name}-390x844")
    assert_fits_width(page, name)


def test_passkey_registration_sign_in_and_step_up(idp, page):
    live, callback = idp
    cdp, authenticator = _authenticator(page)

    # 1. Password sign-in (an L2 session on the demo citizen's L3 account).
    page.goto(live.url("/login"))
    fill_login(page, DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD, submit="form button[type=submit]")
    page.wait_for_url(live.url("/"))

    # 2. Binding a passkey needs L3 on this real-name account: the page says so and
    #    offers the step-up (an SMS code), which comes back here.
    page.goto(live.url("/account/passkeys"))
    step_up = page.locator("#passkey-step-up")
    expect(step_up).to_contain_text("L3")
    expect(page.locator("#passkey-register")).to_have_count(0)
    _fits(page, "passkeys-step-up")
    step_up.locator("button[type=submit]").click()
    page.wait_for_url(live.url("/login/step-up?**"))
    sms = page.locator("#stepup-sms")
    expect(sms).to_contain_text("138****8000")
    sent_after = time.time() - 1
    sms.locator("button[type=submit]").click()
    page.fill("#sms-code", live.sms_code(DEMO_PHONE, "stepup", after=sent_after))
    page.locator("#sms-code").press("Enter")
    page.wait_for_url(live.url("/account/passkeys"))
    expect(page.locator("#passkey-step-up")).to_have_count(0)

    # 3. Bind a passkey.
    expect(page.locator("#no-passkeys")).to_be_visible()
    page.fill("#passkey-name", "测试指纹")
    page.click("#passkey-register [data-passkey-start]")
    expect(page.locator("#passkeys li")).to_have_count(1)
    expect(page.locator("#passkeys li .passkey-name")).to_have_text("测试指纹")
    expect(page.locator("#passkeys li")).to_have_attribute("data-level", "L3")
    _fits(page, "passkeys")
    creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(creds) == 1 and creds[0]["isResidentCredential"]  # discoverable
    assert creds[0]["rpId"] == "localhost"

    # 4. Sign out.
    page.goto(live.url("/"))
    page.click("form[action$='/logout'] button[type=submit]")
    page.wait_for_load_state()
    assert "idp_sso" not in {c["name"] for c in page.context.cookies(live.base_url)}

    # 5. A relying party asks; the person signs in with the passkey only, no username.
    verifier, state = _authorize(page, live, callback)
    page.wait_for_url(live.url("/login?**"))
    button = page.locator("#passkey-login [data-passkey-start]")
    expect(button).to_have_text("使用通行密钥/指纹登录")
    _fits(page, "login-passkey")
    with _arrival(page, callback) as arrived:
        button.click()
    claims = _id_token(live, callback, arrived.value.url, state, verifier)
    assert claims["amr"] == ["hwk"] and claims["acr"] == "L3"
    # The authenticator's counter moved.
    creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert creds[0]["signCount"] >= 1

    # 6. Step-up: a password session (L2) asked for L3 proves it with the passkey.
    page.goto(live.url("/"))
    page.click("form[action$='/logout'] button[type=submit]")
    page.wait_for_load_state()
    verifier, state = _authorize(page, live, callback, acr_values="L3")
    page.wait_for_url(live.url("/login?**"))
    fill_login(page, DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD, submit="form button[type=submit]")
    page.wait_for_url(live.url("/login/step-up?**"))
    with _arrival(page, callback) as arrived:
        page.click("#passkey-stepup [data-passkey-start]")
    claims = _id_token(live, callback, arrived.value.url, state, verifier)
    assert claims["amr"] == ["pwd", "hwk"] and claims["acr"] == "L3"


def _authorize(page, live, callback, **extra) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    page.goto(live.url("/authorize?" + urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": callback,
        "scope": "openid profile", "state": state, "nonce": "n-" + state,
        "code_challenge": challenge, "code_challenge_method": "S256", **extra})))
    return verifier, state


@contextmanager
def _arrival(page, callback):
    """The browser's visit to the relying party, once that page has loaded."""
    def at_callback(url: str) -> bool:
        return url.startswith(callback + "?")

    with page.expect_request(lambda req: at_callback(req.url)) as arrived:
        yield arrived
    page.wait_for_url(at_callback)


def _id_token(live, callback, url, state, verifier) -> dict:
    q = query(url)
    assert q["state"] == state and "code" in q, q
    claims = redeem_code(live, CLIENT_ID, CLIENT_SECRET, q["code"], callback, verifier)
    assert claims["nonce"] == "n-" + state and claims["iss"] == live.issuer
    return claims
