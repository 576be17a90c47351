"""The account pages in headless Chromium against ``idp serve`` (issue 11): a phone
(390×844) in Chinese, a desktop in English and a kiosk (1080×1920) in the elder-friendly
display, each through the signed-out home page, sign-in, the account page, a password
change (a refused one first: its error tied to the field), where I am signed in, the
sign-in history, connected applications, asking to close and cancelling, the logout
confirmation's cancel and the 404 page — axe-core on every page (no serious or critical
violation), every page fitting its screen. And the same changes with JavaScript off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from .browser import KIOSK_VIEWPORT, PHONE, open_context
from .conftest import LiveIdP, provider, running
from .test_registration_browser import check_page, citizen_id

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
KIOSK = {"viewport": KIOSK_VIEWPORT, "has_touch": True}
PASSWORD = "Quiet-Harbour-31"
NEW_PASSWORD = "Amber-Lantern-58"
RUNS = [
    pytest.param(PHONE, "zh-CN", False, id="phone-zh"),
    pytest.param(DESKTOP, "en", False, id="desktop-en"),
    pytest.param(KIOSK, "zh-CN", True, id="kiosk-zh-elder"),
]
_SEQ = {"n": 200}


@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> Iterator[LiveIdP]:
    with provider(tmp_path_factory, "account-idp") as live:
        live.run_cli("init")
        with running(live):
            yield live


def _person(live: LiveIdP) -> str:
    _SEQ["n"] += 1
    number = citizen_id(_SEQ["n"])
    live.run_cli("user", "add", "--id-number", number, "--name", "钱九", "--password",
                 PASSWORD, "--phone", f"1350000{_SEQ['n']:04d}")
    return number


def _sign_in(page: Page, live: LiveIdP, number: str, password: str = PASSWORD) -> None:
    page.goto(live.url("/account/"))
    page.wait_for_url(live.url("/login") + "**")
    page.locator("#username").fill(number)
    page.locator("#password").fill(password)
    page.locator("#password").press("Enter")
    page.wait_for_url(live.url("/account/"))


@pytest.mark.parametrize(("device", "locale", "elder"), RUNS)
def test_account_journey(idp, browser, device, locale, elder):
    live = idp
    number = _person(live)
    en = locale == "en"
    tag = f"account-{locale}-{device['viewport']['width']}{'-elder' if elder else ''}"
    with open_context(browser, locale=locale, **device) as ctx:
        page = ctx.new_page()
        page.goto(live.url("/?lang=en" if en else "/"))
        if elder:  # one tap, then every page keeps it
            page.locator("#display-toggle").click()
            assert page.locator("html").get_attribute("class") == "elder"
        assert page.locator("#about").is_visible()
        check_page(page, f"{tag}-home")
        _sign_in(page, live, number)
        assert page.locator("#menu").is_visible()
        check_page(page, f"{tag}-index")

        page.goto(live.url("/account/password"))
        page.locator("#new_password").fill("password1")
        page.locator("#new_password_again").fill("password1")
        page.locator("#password-submit").click()
        page.locator("#new_password-error").wait_for()
        assert page.locator("#new_password").get_attribute("aria-invalid") == "true"
        assert "new_password-error" in page.locator("#new_password").get_attribute(
            "aria-describedby")
        check_page(page, f"{tag}-password-error")
        page.locator("#new_password").fill(NEW_PASSWORD)
        page.locator("#new_password_again").fill(NEW_PASSWORD)
        page.locator("#password-submit").click()
        page.wait_for_url(live.url("/account/?done=password"))
        assert page.locator("#done").is_visible()

        for path, name in (("/account/sessions", "sessions"), ("/account/history", "history"),
                           ("/account/apps", "apps")):
            page.goto(live.url(path))
            check_page(page, f"{tag}-{name}")
        assert page.locator("#no-apps").is_visible()
        page.goto(live.url("/account/history"))
        assert page.locator("#history li").count() >= 2  # the sign-in and the change

        page.goto(live.url("/account/close"))
        check_page(page, f"{tag}-close")
        page.locator("#understood").check()
        page.locator("#close-submit").click()
        page.wait_for_url(live.url("/account/?done=close_requested"))
        assert page.locator("#closing").is_visible()
        check_page(page, f"{tag}-closing")
        page.locator("#cancel-close").click()
        page.wait_for_url(live.url("/account/?done=close_cancelled"))

        page.goto(live.url("/logout"))
        check_page(page, f"{tag}-logout-confirm")
        page.locator("#logout-cancel").click()
        page.goto(live.url("/account/"))
        assert page.url == live.url("/account/")  # still signed in

        missing = page.goto(live.url("/no/such/page"))
        assert missing.status == 404
        assert page.locator("h1").inner_text() == ("Page not found" if en else "找不到该页面")
        check_page(page, f"{tag}-404")
        if elder:
            assert page.locator("html").get_attribute("class") == "elder"


def test_account_changes_work_without_javascript(idp, browser):
    live = idp
    number = _person(live)
    with open_context(browser, java_script_enabled=False, **PHONE) as ctx:
        page = ctx.new_page()
        _sign_in(page, live, number)
        page.goto(live.url("/account/password"))
        page.locator("#new_password").fill(NEW_PASSWORD)
        page.locator("#new_password_again").fill(NEW_PASSWORD)
        page.locator("#password-submit").click()
        page.wait_for_url(live.url("/account/?done=password"))
        page.goto(live.url("/account/sessions"))
        page.locator("#end-all").click()
        page.goto(live.url("/account/"))
        page.wait_for_url(live.url("/login") + "**")  # signed out everywhere
    with open_context(browser, **PHONE) as ctx:  # the new password works
        _sign_in(ctx.new_page(), live, number, NEW_PASSWORD)
