"""The account pages in headless Chromium against ``idp serve`` (issue 11): a phone
(390×844) in Chinese, a desktop in English and a kiosk (1080×1920) in the elder-friendly
display, each through the signed-out home page, sign-in, the account page, a password
change (a refused one first: its error tied to the field), where I am signed in, the
sign-in history, connected applications, asking to close and cancelling, the phone
change pages (with the old phone; at a counter: the reference, the hall clerk's page
vouching for it, the form it opens; the lost phone's step-up), a lapsed sign-in
request, enterprise registration after an SMS step-up (the demo citizen; a refused
credit code), the logout confirmation's cancel and the 404 page — axe-core on every
page (no serious or critical violation), every page fitting its screen. And the same
changes with JavaScript off."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from idp.ui import DISPLAY_COOKIE

from .browser import KIOSK_VIEWPORT, PHONE, open_context
from .conftest import DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD, DEMO_PHONE, LiveIdP, provider, running
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
    # The demo citizen steps up by SMS once per run: no minute's wait between the codes;
    # enterprise registration looks enterprises up in the development register.
    env = {"IDP_SMS_PHONE_INTERVAL": "1",
           "IDP_ORG_REGISTRY": "idp.account.enterprise_registration:DevRegistry"}
    with provider(tmp_path_factory, "account-idp", env=env) as live:
        live.run_cli("init", "--demo")
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

        _phone_pages(page, live, tag, number)
        display = [c for c in ctx.cookies() if c["name"] == DISPLAY_COOKIE]
        _enterprise_pages(browser, live, tag, {"locale": locale, **device}, display, en)

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


def _phone_pages(page: Page, live: LiveIdP, tag: str, number: str) -> None:
    """The phone change (with the old phone; at a counter: the reference, the clerk
    vouching for it on the hall page, the form it opens; the lost phone's step-up) and a
    lapsed sign-in request."""
    page.goto(live.url("/account/phone"))
    assert page.locator("#phone").is_visible()
    check_page(page, f"{tag}-phone")
    page.goto(live.url("/account/phone?lost=1"))  # L4 for an L2 session: a step-up first
    page.wait_for_url("**/login/step-up?**")
    check_page(page, f"{tag}-phone-lost-step-up")

    page.goto(live.url("/account/phone?counter=1"))
    check_page(page, f"{tag}-phone-counter")
    page.locator("#reference").click()
    reference = page.locator("#reference-code").inner_text().strip()
    check_page(page, f"{tag}-phone-counter-reference")
    page.goto(live.url("/demo/hall/phone"))
    check_page(page, f"{tag}-hall-phone")
    page.locator("#login_hint").fill(number)
    page.locator("#reference").fill(reference)
    page.locator("input[name=checked]").check()
    page.locator("form[action$='/demo/hall/phone'] button[type=submit]").click()
    page.locator("#hall-phone-done").wait_for()
    check_page(page, f"{tag}-hall-phone-done")
    page.goto(live.url("/account/phone?counter=1"))
    assert page.locator("#counter-vouched").is_visible()
    check_page(page, f"{tag}-phone-counter-vouched")

    lapsed = page.goto(live.url("/login?rid=no-such-request"))
    assert lapsed.status == 400
    check_page(page, f"{tag}-request-expired")


def _enterprise_pages(browser, live: LiveIdP, tag: str, options: dict, display: list,
                      en: bool) -> None:
    """Enterprise registration needs L3: the demo citizen (a real-name account) signs in
    with the password, steps up with the SMS code and lands on the registration form; a
    credit code that cannot be one is refused at its field."""
    with open_context(browser, **options) as ctx:
        ctx.add_cookies(display)  # the elder display, where the journey chose it
        page = ctx.new_page()
        page.goto(live.url("/?lang=en" if en else "/"))
        page.goto(live.url("/account/enterprise/register"))
        page.wait_for_url(live.url("/login") + "**")
        page.locator("#username").fill(DEMO_CITIZEN_ID)
        page.locator("#password").fill(DEMO_CITIZEN_PASSWORD)
        page.locator("#password").press("Enter")
        page.wait_for_url("**/login/step-up?**")
        check_page(page, f"{tag}-enterprise-step-up")
        before = time.time() - 1
        page.locator("#stepup-sms button[type=submit]").click()
        code = live.sms_code(DEMO_PHONE, "stepup", after=before)
        page.locator("#sms-code").fill(code)
        page.locator("#sms-code").press("Enter")
        page.wait_for_url(live.url("/account/enterprise/register"))
        assert page.locator("h1").inner_text() == (
            "Register an enterprise" if en else "法人注册（登记企业）")
        check_page(page, f"{tag}-enterprise")
        page.locator("#uscc").fill("12345")
        page.locator("#org_name").fill("某某公司")
        page.locator("#org-register-submit").click()
        page.locator("#uscc-error").wait_for()
        assert page.locator("#uscc").get_attribute("aria-invalid") == "true"
        check_page(page, f"{tag}-enterprise-error")


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
