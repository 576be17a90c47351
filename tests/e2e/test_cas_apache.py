"""Apache httpd's ``mod_auth_cas`` protecting a page with the provider as its CAS server:
signing in through the login form in headless Chromium, the ticket validated by
mod_auth_cas (CAS 3.0 attributes, checked by ``Require cas-attribute``), refused on
replay, for another page and once expired, and CAS single logout ending mod_auth_cas's
own session. And the CAS demo site of ``idp serve --demo``: signed in on the province
portal (OIDC), it signs in without a password, and one logout ends both. Nothing of the
provider is imported."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from .apache_cas import Apache
from .browser import fill_login, open_context
from .cas_provider import CITIZEN_ID, CITIZEN_PASSWORD, TICKET_TTL
from .conftest import DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD, LiveIdP

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(cas_setup) -> tuple[LiveIdP, Apache]:
    return cas_setup.idp, cas_setup.apache


def ticket_url(idp: LiveIdP, service: str) -> str:
    """Sign in through the login form with a plain HTTP client and return the URL the
    browser would be sent back to (the service with its ticket), without visiting it."""
    browser = requests.Session()
    resp = browser.get(idp.base_url + "/cas/login?" + urlencode({"service": service}),
                       allow_redirects=False)
    page = browser.get(idp.base_url + resp.headers["Location"])
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    resp = browser.post(idp.base_url + "/login", allow_redirects=False,
                        data={**fields, "username": CITIZEN_ID, "password": CITIZEN_PASSWORD})
    while not resp.headers["Location"].startswith(service):
        resp = browser.get(idp.base_url + resp.headers["Location"], allow_redirects=False)
    return resp.headers["Location"]


def signed_in(resp: requests.Response) -> bool:
    return resp.status_code == 200 and "REMOTE_USER=" in resp.text \
        and "REMOTE_USER=\n" not in resp.text


def test_mod_auth_cas_signs_in_through_the_login_form(site, browser):
    idp, apache = site
    with open_context(browser) as ctx:
        page = ctx.new_page()
        page.goto(apache.base + "/protected/page")
        page.wait_for_url(idp.base_url + "/login?**")
        expect(page.locator("main")).to_contain_text("市民服务网（Apache）")
        fill_login(page, CITIZEN_ID, CITIZEN_PASSWORD)
        page.wait_for_url(apache.base + "/protected/page")  # ticket validated and stripped
        body = page.locator("body").inner_text()
        assert "REMOTE_USER=" in body and "HTTP_CAS_NAME=王五" in body
        assert "HTTP_CAS_ACR=L2" in body and "HTTP_CAS_CHANNEL=web" in body
        assert CITIZEN_ID not in body
        # attributes drive mod_auth_cas's own authorisation: this page needs acr L3
        resp = page.goto(apache.base + "/level3/page")
        assert resp.status in (401, 403)

        # CAS single logout: the provider tells mod_auth_cas, which drops its session
        page.goto(idp.base_url + "/cas/logout")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_contain_text("您已安全退出")
        deadline = time.monotonic() + 10
        while True:
            page.goto(apache.base + "/protected/page")
            if page.url.startswith(idp.base_url + "/login"):
                break
            assert time.monotonic() < deadline, "mod_auth_cas kept its session after logout"
            time.sleep(0.2)


def test_ticket_replay_is_refused_by_the_provider(site):
    idp, apache = site
    url = ticket_url(idp, apache.base + "/protected/page")
    assert parse_qs(urlsplit(url).query)["ticket"][0].startswith("ST-")
    assert signed_in(requests.get(url, timeout=20))  # first use: signed in
    before = len(apache.refusals())
    assert not signed_in(requests.get(url, allow_redirects=False, timeout=20))  # another browser
    assert apache.refusals()[before:] == ["INVALID_TICKET"]


def test_ticket_for_another_page_is_refused(site):
    idp, apache = site
    url = ticket_url(idp, apache.base + "/protected/page")
    moved = url.replace("/protected/page", "/other/page")
    before = len(apache.refusals())
    assert not signed_in(requests.get(moved, allow_redirects=False, timeout=20))
    # and the ticket is used up
    assert not signed_in(requests.get(url, allow_redirects=False, timeout=20))
    assert apache.refusals()[before:] == ["INVALID_SERVICE", "INVALID_TICKET"]


def test_expired_ticket_is_refused(site):
    idp, apache = site
    url = ticket_url(idp, apache.base + "/protected/page")
    time.sleep(TICKET_TTL + 0.5)  # past the ticket's whole lifetime
    before = len(apache.refusals())
    assert not signed_in(requests.get(url, allow_redirects=False, timeout=20))
    assert apache.refusals()[before:] == ["INVALID_TICKET"]


def test_demo_oidc_sign_in_carries_to_the_cas_demo_site_and_logout_ends_both(cas_setup, browser):
    idp, province, cas_site = cas_setup.idp, cas_setup.province, cas_setup.cas_demo
    with open_context(browser) as context:
        _demo_flow(idp, province, cas_site, context)


def _demo_flow(idp, province, cas_site, context):
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
