"""The sign-in request's time limit in headless Chromium (WCAG 2.2.1, issue 11): with a
short configured lifetime the login page's polite warning comes up at once, "延长时间"
extends the request through ``POST /login/extend`` and the sign-in then completes on
it. The test waits on the page's state, never on the clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from .browser import open_context
from .conftest import LiveIdP, provider, running
from .test_registration_browser import citizen_id

pytestmark = pytest.mark.browser

PASSWORD = "Quiet-Meadow-62"
# A request lives 90 s, the warning starts 120 s before the end (at once), an extension
# gives 15 minutes (past the warning again): each state is seen without waiting.
SHORT = {"IDP_AUTH_REQUEST_TTL": "90", "IDP_AUTH_REQUEST_WARN_SECONDS": "120",
         "IDP_AUTH_REQUEST_EXTEND_SECONDS": "900"}
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> Iterator[LiveIdP]:
    with provider(tmp_path_factory, "deadline-idp", env=SHORT) as live:
        live.run_cli("init")
        with running(live):
            yield live


def test_the_warning_appears_and_extending_keeps_the_sign_in_alive(idp, browser):
    live = idp
    number = citizen_id(401)
    live.run_cli("user", "add", "--id-number", number, "--name", "孙七", "--password",
                 PASSWORD, "--phone", "13500004401")
    with open_context(browser) as ctx:
        page = ctx.new_page()
        page.goto(live.url("/account/password"))  # signed out: a sign-in that comes back
        page.wait_for_url(live.url("/login?rid=") + "**")
        expect(page.locator("#deadline-text")).to_contain_text("北京时间")
        warning = page.locator("#deadline-warning")
        assert warning.get_attribute("aria-live") == "polite"
        extend = page.locator("#deadline-extend")
        expect(extend).to_be_visible(timeout=WAIT_MS)
        expect(warning).to_contain_text("延长时间")
        with page.expect_response(live.url("/login/extend")) as answer:
            extend.click()
        assert answer.value.status == 200 and answer.value.json()["extended"] is True
        expect(extend).to_be_hidden(timeout=WAIT_MS)
        expect(warning).to_contain_text("已延长")
        expect(page.locator("#deadline-text")).to_contain_text("已延长")
        page.locator("#username").fill(number)
        page.locator("#password").fill(PASSWORD)
        page.locator("#password").press("Enter")
        page.wait_for_url(live.url("/account/password"))
