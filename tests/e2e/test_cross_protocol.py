"""One sign-in across the three protocols, in headless Chromium against ``idp serve
--demo``: the OpenID Connect province portal asks for the password once; the CAS demo
site (gateway) and the SAML demo site (IsPassive) then sign in without one; logging out
on the SAML site ends all three (SAML SLO → the provider's one logout → OIDC
back-channel logout and CAS single logout).

Everything goes through ``localhost`` (issuer http://localhost:P; the OIDC sites on
P+1 and P+2, the CAS site on P+3, the SAML site on P+4), as the demo derives its sites'
URLs from the issuer's host."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from .browser import fill_login, open_context
from .conftest import DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD, LiveIdP, provider, running

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[LiveIdP]:
    with provider(tmp_path_factory, "cross-protocol", span=5, host="localhost") as idp:
        out = idp.run_cli("init", "--demo")
        assert out["demo"]["cas_site"]["protocol"] == "cas"
        assert out["demo"]["saml_site"]["url"] == f"http://localhost:{idp.port + 4}"
        with running(idp, serve_args=("--demo",)):
            yield idp


def _site(idp: LiveIdP, offset: int) -> str:
    return f"http://localhost:{idp.port + offset}"


def _state(page: Page, url: str) -> str:
    page.goto(url + "/")
    page.wait_for_url(url + "/")  # silent checks (prompt=none, gateway, IsPassive) done
    return page.locator("#status").get_attribute("data-state")


def _eventually_signed_out(page: Page, url: str) -> None:
    deadline = time.monotonic() + 15  # back-channel deliveries run in the background
    while _state(page, url) != "signed-out":
        assert time.monotonic() < deadline, f"{url} stayed signed in after the logout"
        time.sleep(0.3)


def test_one_password_for_oidc_cas_and_saml_and_one_logout_for_all(demo, browser):
    province, cas, saml = _site(demo, 1), _site(demo, 3), _site(demo, 4)
    with open_context(browser) as ctx:
        page = ctx.new_page()
        logins: list[str] = []
        page.on("request", lambda r: logins.append(r.url) if r.method == "POST"
                and r.url.startswith(demo.base_url.replace("127.0.0.1", "localhost") + "/login")
                else None)
        assert _state(page, province) == "signed-out"
        page.click("#login")
        page.wait_for_url("**/login?**")
        fill_login(page, DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD)
        page.wait_for_url(province + "/")
        expect(page.locator("#status")).to_have_attribute("data-state", "signed-in")

        # the CAS site and the SAML site: signed in by the same session, no page shown
        assert _state(page, cas) == "signed-in"
        assert _state(page, saml) == "signed-in"
        expect(page.locator("#status")).to_contain_text("110105")  # the masked number
        assert DEMO_CITIZEN_ID not in page.content()
        assert len(logins) == 1  # one password, for all three protocols

        # logging out on the SAML site ends every site of the session
        page.click("#logout")
        page.wait_for_url(saml + "/")
        expect(page.locator("#status")).to_have_attribute("data-state", "signed-out")
        _eventually_signed_out(page, province)
        _eventually_signed_out(page, cas)
        assert _state(page, saml) == "signed-out"
        page.goto(saml + "/login")  # and the provider's session is gone: a password again
        page.wait_for_url("**/login?**")
