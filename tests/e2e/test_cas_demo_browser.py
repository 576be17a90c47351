"""Headless Chromium against ``idp serve --demo``: the CAS-protected demo site shares
the OpenID Connect sites' sign-in — signed in on the province portal (OIDC), the CAS site
signs in by itself without a password (CAS gateway), and logging out on the portal ends
it too (OIDC back-channel and CAS single logout from one logout)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, expect

from .browser import fill_login, open_context
from .conftest import DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD, LiveIdP, provider, running

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[tuple[LiveIdP, str, str]]:
    with provider(tmp_path_factory, "cas-demo-idp", span=4, host="localhost") as idp:
        out = idp.run_cli("init", "--demo")
        cas_site = out["demo"]["cas_site"]["url"]
        assert cas_site == f"http://localhost:{idp.port + 3}"
        with running(idp, serve_args=("--demo",)):
            yield idp, f"http://localhost:{idp.port + 1}", cas_site


@pytest.fixture
def context(browser) -> Iterator[BrowserContext]:
    with open_context(browser) as ctx:
        yield ctx


def test_oidc_sign_in_carries_to_the_cas_site_and_logout_ends_both(demo, context):
    idp, province, cas_site = demo
    page = context.new_page()
    page.goto(cas_site + "/")  # gateway: not signed in anywhere, no page of the provider
    expect(page.locator("#status")).to_have_attribute("data-state", "signed-out")

    page.goto(province + "/")
    page.click("#login")
    page.wait_for_url(idp.base_url + "/login?**")
    fill_login(page, DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD)
    page.wait_for_url(province + "/")
    expect(page.locator("#status")).to_have_attribute("data-state", "signed-in")

    cas = context.new_page()
    cas.goto(cas_site + "/login")  # one click, no password: the session is shared
    cas.wait_for_url(cas_site + "/")
    expect(cas.locator("#status")).to_have_attribute("data-state", "signed-in")
    expect(cas.locator("#status")).to_contain_text("张三")
    expect(cas.locator("#status")).to_contain_text("110105********1239")

    page.click("#logout")  # RP-initiated logout at the province portal
    page.wait_for_url(province + "/**")
    expect(page.locator("#status")).to_have_attribute("data-state", "signed-out")
    deadline = time.monotonic() + 10
    while True:
        cas.goto(cas_site + "/")
        if cas.locator("#status").get_attribute("data-state") == "signed-out":
            break
        assert time.monotonic() < deadline, "the CAS site kept its session after logout"
        time.sleep(0.2)
