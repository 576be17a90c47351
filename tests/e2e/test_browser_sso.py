"""Headless Chromium against ``idp serve --demo``: the two demo government sites,
single sign-on between them, single logout (back-channel), the login page's
language, error messages and layout on a phone and a kiosk.

Everything goes through ``localhost`` (issuer http://localhost:PORT, demo sites on
PORT+1 and PORT+2), as the demo sites derive their URLs from the issuer's host.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .browser import assert_fits_width, fill_login, open_context, screenshot
from .conftest import DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD, LiveIdP, provider, running

pytestmark = pytest.mark.browser

# 110105 19900307 1239 typed in full-width digits with (ideographic and ASCII)
# spaces, as a Chinese input method in full-width mode produces it.
DEMO_ID_TYPED = "１１０１０５\u3000１９９００３０７ １２３９"
WRONG_CHECK_DIGIT = DEMO_CITIZEN_ID[:-1] + "8"  # the right check character is 9


class DemoIdP(LiveIdP):
    @property
    def province(self) -> str:
        return f"http://localhost:{self.port + 1}"

    @property
    def city(self) -> str:
        return f"http://localhost:{self.port + 2}"


@pytest.fixture(scope="module")
def demo_idp(tmp_path_factory) -> Iterator[DemoIdP]:
    with provider(tmp_path_factory, "demo-idp", span=3, host="localhost", cls=DemoIdP) as idp:
        out = idp.run_cli("init", "--demo")
        assert out["demo"]["citizen"]["id_number"] == DEMO_CITIZEN_ID
        assert {s["url"] for s in out["demo"]["sites"]} == {idp.province, idp.city}
        with running(idp, serve_args=("--demo",)):
            yield idp


@pytest.fixture
def context(browser) -> Iterator[BrowserContext]:
    with open_context(browser) as ctx:
        yield ctx


def status(page: Page):
    return page.locator("#status")


def idp_page_requests(page: Page, idp: LiveIdP, path: str) -> list[str]:
    """Records the URLs of the provider's ``path`` that ``page`` navigates to."""
    seen: list[str] = []

    def on_request(req):
        if req.is_navigation_request() and req.url.startswith(idp.base_url + path):
            seen.append(req.url)

    page.on("request", on_request)
    return seen


def test_single_sign_on_and_single_logout(demo_idp, context):
    a = context.new_page()
    a.goto(demo_idp.province + "/")
    # Arriving, the site asked the provider silently (prompt=none) and was told no.
    expect(status(a)).to_have_attribute("data-state", "signed-out")

    a.click("#login")
    a.wait_for_url(demo_idp.base_url + "/login?**")
    expect(a.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(a.locator("label[for=username]")).to_contain_text("身份证号码")
    expect(a.locator("main")).to_contain_text("省政务服务网")  # which site is asking
    fill_login(a, DEMO_ID_TYPED, DEMO_CITIZEN_PASSWORD)
    a.wait_for_url(demo_idp.province + "/**")
    expect(status(a)).to_have_attribute("data-state", "signed-in")
    expect(status(a)).to_contain_text("张三")
    expect(status(a)).to_contain_text("110105********1239")  # masked, never in full
    sid_a = a.locator("code").inner_text()
    assert sid_a

    # Site B in the same browser: signed in by the silent check, no password asked.
    b = context.new_page()
    logins = idp_page_requests(b, demo_idp, "/login")
    authorizations = idp_page_requests(b, demo_idp, "/authorize")
    b.goto(demo_idp.city + "/")
    expect(status(b)).to_have_attribute("data-state", "signed-in")
    assert logins == [], f"the second site showed the login page: {logins}"
    assert len(authorizations) == 1 and "prompt=none" in authorizations[0]
    assert b.locator("code").inner_text() == sid_a  # one provider session for both

    # Logout on B ends the provider session and, by back-channel, A's session.
    b.click("#logout")
    b.wait_for_url(demo_idp.city + "/**")
    expect(status(b)).to_have_attribute("data-state", "signed-out")
    assert "idp_sso" not in {c["name"] for c in context.cookies(demo_idp.base_url)}

    deadline = time.monotonic() + 5
    while True:
        a.reload()
        state = status(a).get_attribute("data-state")
        if state == "signed-out" or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert state == "signed-out", "site A still signed in 5 s after logout on site B:\n" + (
        demo_idp.log_tail(30))
    expect(a.locator("#login")).to_be_visible()


def test_wrong_check_digit_names_expected_character(demo_idp, context):
    page = context.new_page()
    resp = page.goto(demo_idp.url("/login"))
    assert resp.status == 200
    with page.expect_navigation() as nav:
        fill_login(page, WRONG_CHECK_DIGIT, "whatever-1")
    assert nav.value.status == 400
    error = page.locator("[role=alert]")
    expect(error).to_contain_text("校验码")
    expect(error).to_contain_text("最后一位应为 9")
    # The number is kept for correcting, and the password is not.
    expect(page.locator("#username")).to_have_value(WRONG_CHECK_DIGIT)
    expect(page.locator("#password")).to_have_value("")


# Smallest heights, CSS px: the stylesheet's own touch targets (44 px buttons; 72 px
# for everything on a kiosk), and WCAG 2.2's 24 px minimum for the phone's text inputs.
@pytest.mark.parametrize(("name", "width", "height", "min_height"), [
    ("phone", 390, 844, {"input": 24, "button": 44}),
    ("kiosk", 1080, 1920, {"input": 72, "button": 72}),
], ids=["phone-390x844", "kiosk-1080x1920"])
def test_login_page_fits_phone_and_kiosk(demo_idp, browser, name, width, height, min_height):
    with open_context(browser, viewport={"width": width, "height": height},
                      is_mobile=name == "phone", has_touch=True) as ctx:
        page = ctx.new_page()
        page.goto(demo_idp.province + "/")
        page.click("#login")
        page.wait_for_url(demo_idp.base_url + "/login?**")
        # With the error shown: the widest state.
        fill_login(page, WRONG_CHECK_DIGIT, "whatever-1")
        expect(page.locator("[role=alert]")).to_be_visible()
        screenshot(page, f"login-{name}-{width}x{height}")
        inner_width = assert_fits_width(page, name)
        for selector, kind in (("#username", "input"), ("#password", "input"),
                               ("button[type=submit]", "button")):
            box = page.locator(selector).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= inner_width, selector
            assert box["height"] >= min_height[kind], (
                f"{name}: {selector} is {box['height']} px high, under {min_height[kind]}")


def test_english_by_lang_parameter(demo_idp, context):
    page = context.new_page()
    page.goto(demo_idp.url("/login?lang=en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("label[for=username]")).to_have_text("ID card number or mobile number")
    expect(page.locator("h1")).to_have_text("Sign in")
    assert "身份证" not in page.locator("main").inner_text()
    # Identifier errors in English too.
    fill_login(page, WRONG_CHECK_DIGIT, "whatever-1")
    expect(page.locator("[role=alert]")).to_contain_text("check character should be '9'")
    # The switch back to Chinese.
    page.click("header nav.lang a")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("label[for=username]")).to_contain_text("身份证号码")


def test_english_by_ui_locales(demo_idp, context):
    page = context.new_page()
    page.goto(demo_idp.province + "/")
    expect(status(page)).to_have_attribute("data-state", "signed-out")
    # The site's own authorization request (state and PKCE in its session cookie,
    # which context.request shares with the page), with ui_locales=en added.
    resp = context.request.get(demo_idp.province + "/login", max_redirects=0)
    assert resp.status == 302
    authorize = resp.headers["location"]
    assert authorize.startswith(demo_idp.base_url + "/authorize?")
    page.goto(authorize + "&ui_locales=en")
    page.wait_for_url(demo_idp.base_url + "/login?**")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("label[for=username]")).to_have_text("ID card number or mobile number")
    fill_login(page, DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD)
    page.wait_for_url(demo_idp.province + "/**")
    expect(status(page)).to_have_attribute("data-state", "signed-in")
