"""Headless Chromium with its fake camera against ``idp serve``: a relying party asks for
acr L4; the demo citizen (a real-name L3 account) signs in with the password (L2), opens
the face match from the step-up page, is first told off for uploading something that is
not a photo, then takes a picture with the camera, and the relying party gets an ID
token saying L4 with amr pwd + face. The face page is checked at phone and kiosk sizes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from .browser import (
    KIOSK_VIEWPORT,
    PHONE_VIEWPORT,
    assert_fits_width,
    chromium,
    fill_login,
    open_context,
    screenshot,
)
from .conftest import DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD, LiveIdP, provider, running
from .oauth import pkce_pair, query, redeem_code

pytestmark = pytest.mark.browser

# Chromium's own test camera (a moving pattern, 640x480) and no permission prompt.
FAKE_CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
REDIRECT = "https://rp.example/face/cb"  # never reached: the browser is stopped there


@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> Iterator[tuple[LiveIdP, str]]:
    # With an external database the face match is off unless a verifier is named.
    with provider(tmp_path_factory, "face-idp", env={"IDP_FACE_VERIFIER": "dev"}) as live:
        live.run_cli("init", "--demo")
        secret = live.run_cli("client", "add", "--client-id", "face-rp", "--name", "不动产登记",
                              "--redirect-uri", REDIRECT, "--first-party")["client_secret"]
        with running(live):
            yield live, secret


def _authorize_url(live: LiveIdP, state: str, nonce: str, challenge: str) -> str:
    return live.url("/authorize?" + urlencode({
        "response_type": "code", "client_id": "face-rp", "redirect_uri": REDIRECT,
        "scope": "openid profile", "state": state, "nonce": nonce, "acr_values": "L4",
        "code_challenge": challenge, "code_challenge_method": "S256"}))


def test_camera_capture_steps_up_to_l4(idp):
    live, secret = idp
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)

    # A browser of its own: the fake camera is a launch switch.
    with chromium(*FAKE_CAMERA) as browser, open_context(browser, viewport=PHONE_VIEWPORT) as ctx:
        landed: list[str] = []

        def at_rp(route):
            landed.append(route.request.url)
            route.fulfill(status=200, content_type="text/html", body="<p id=rp>ok</p>")

        ctx.route(REDIRECT + "**", at_rp)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(_authorize_url(live, state, nonce, challenge))
        fill_login(page, DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD)
        page.wait_for_url("**/login/step-up?**")
        expect(page.locator("main")).to_contain_text("L4")
        expect(page.locator("#stepup-sms")).to_have_count(0)  # cannot reach L4
        page.click("#stepup-face-start")
        page.wait_for_url("**/login/step-up/face?**")
        expect(page.locator("main")).to_contain_text("不动产登记")

        # Not a photo, through the upload fallback: a readable refusal, no reload.
        page.set_input_files("#face-file", files=[{
            "name": "note.txt", "mimeType": "image/jpeg", "buffer": b"not a photo" * 200}])
        page.click("#face-upload button[type=submit]")
        status = page.locator("[data-face-status]")
        expect(status).to_contain_text("照片无法使用")
        expect(status).to_have_class("face-status is-error")

        page.click("[data-face-start]")
        shoot = page.locator("[data-face-shoot]")
        expect(shoot).to_be_visible()
        page.wait_for_function(
            "document.querySelector('[data-face-video]').videoWidth >= 200")
        screenshot(page, "face-step-up-phone-390x844")
        assert_fits_width(page, "face page, phone")
        page.set_viewport_size(KIOSK_VIEWPORT)
        screenshot(page, "face-step-up-kiosk-1080x1920")
        assert_fits_width(page, "face page, kiosk")
        assert page.evaluate(
            "document.querySelector('[data-face-shoot]').getBoundingClientRect().bottom"
        ) <= KIOSK_VIEWPORT["height"]
        page.set_viewport_size(PHONE_VIEWPORT)
        shoot.click()
        page.wait_for_selector("#rp")

        # The session now holds L4: another request for L4 goes straight through
        # (the browser's cookies, no page: just where /authorize sends it).
        again = ctx.request.get(_authorize_url(live, "again", nonce, challenge),
                                max_redirects=0)
        assert again.status == 302, again.text()[:300]
        again_at = again.headers["location"]

    assert not [e for e in errors if "Content Security Policy" in e], errors
    first = query(landed[0])
    assert first["state"] == state and first["iss"] == live.issuer and "code" in first
    assert again_at.startswith(REDIRECT) and "code" in query(again_at)
    # The code exchange (asserting HTTP 200) and the ID token's signature.
    claims = redeem_code(live, "face-rp", secret, first["code"], REDIRECT, verifier,
                         algorithms=["ES256", "RS256"])
    assert claims["acr"] == "L4" and set(claims["amr"]) == {"pwd", "face"}
    assert claims["nonce"] == nonce
