"""Apache httpd's ``mod_auth_cas`` protecting a page with the provider as its CAS server:
signing in through the login form in headless Chromium, the ticket validated by
mod_auth_cas (CAS 3.0 attributes, checked by ``Require cas-attribute``), refused on
replay, for another page and once expired, and CAS single logout ending mod_auth_cas's
own session. Nothing of the provider is imported."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from .apache_cas import Apache
from .browser import fill_login, open_context
from .conftest import LiveIdP, provider, running

pytestmark = pytest.mark.browser

CITIZEN_ID = "11010519491231002X"
CITIZEN_PASSWORD = "E2e-Password-2026"
TICKET_TTL = 4  # seconds; mod_auth_cas validates at once, and the test waits it out once


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[LiveIdP, Apache]]:
    with provider(tmp_path_factory, "cas-apache-idp", span=3,
                  env={"IDP_CAS_TICKET_TTL": str(TICKET_TTL)}) as idp:
        port = idp.port + 1  # the site; port + 1 its TLS front for the provider
        idp.run_cli("init")
        idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "王五",
                    "--password", CITIZEN_PASSWORD, "--phone", "13912345678")
        idp.run_cli("client", "add", "--client-id", "apache", "--name", "市民服务网（Apache）",
                    "--protocol", "cas", "--first-party",
                    "--service", f"http://127.0.0.1:{port}/*")
        # Not under pytest's private temporary directory: Apache's children run as nobody
        # when the tests run as root, and must reach their scripts and cookie directory.
        root = Path(tempfile.mkdtemp(prefix="idp-apache-"))
        root.chmod(0o755)
        apache = Apache(root, port=port, tls_port=port + 1, idp_url=idp.base_url)
        try:
            with running(idp):
                apache.start()
                try:
                    yield idp, apache
                finally:
                    apache.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


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
