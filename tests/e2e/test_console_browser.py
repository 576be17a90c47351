"""Every console page of issue 12 in headless Chromium against ``idp serve`` (PostgreSQL +
Redis), at desktop and phone sizes: axe-core (tests/e2e/node_modules) finds no serious
or critical violation, nothing scrolls sideways on the phone, and no page loads anything
from another site (the charts' library is served by the provider itself).

One administrator, the demo citizen, signs in once (password, then the SMS step-up to
L3); between phases the server's command line swaps the separated role they hold, as
three people would hold them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from .browser import PHONE_VIEWPORT, assert_fits_width, open_context, sign_in
from .conftest import (
    DEMO_CITIZEN_ID,
    DEMO_CITIZEN_PASSWORD,
    DEMO_PHONE,
    LiveIdP,
    provider,
    running,
)

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
OTHER_ID = "11010519491231002X"
# The first few elements whose right edge is beyond the window (a phone page must not
# scroll sideways), named so that a failure says which.
WIDER_THAN_SCREEN = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5)
    .map(e => e.tagName + '.' + e.className + '#' + e.id)"""
ROLE_PAGES = {
    "system_admin": ["/admin/dashboard", "/admin/review", "/admin/merges", "/admin/clients",
                     "/admin/clients/pending", "/admin/clients/new", "/admin/clients/{client}",
                     "/admin/keys", "/admin/api-clients"],
    "security_admin": ["/admin/people", "/admin/people/{person}", "/admin/roles"],
    "audit_admin": ["/admin/audit"],
}


@pytest.fixture(scope="module")
def console_idp(tmp_path_factory) -> Iterator[LiveIdP]:
    with provider(tmp_path_factory, "console-idp") as idp:
        path = idp.instance_path
        idp.run_cli("init", "--demo")
        idp.run_cli("user", "add", "--id-number", OTHER_ID, "--name", "李四",
                    "--password", "long-enough-1", "--phone", "13912345678")
        (path / "users.csv").write_bytes(
            f"用户编号,姓名,身份证号\nu2,李斯,{OTHER_ID}\n".encode("gbk"))
        (path / "shebao.toml").write_text(
            '[source]\nname = "shebao-2012"\nkind = "csv"\n\n'
            '[fields]\nlegacy_id = "用户编号"\nname = "姓名"\nid_number = "身份证号"\n\n'
            '[csv]\npath = "users.csv"\n', encoding="utf-8")
        idp.run_cli("legacy", "import", "--config", str(path / "shebao.toml"))
        idp.run_cli("admin", "grant", DEMO_CITIZEN_ID, "--role", "reviewer")
        idp.run_cli("admin", "grant", DEMO_CITIZEN_ID, "--role", "system_admin")
        with running(idp):
            yield idp


def _axe(page: Page, what: str) -> None:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
           for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{what}: {json.dumps(bad, ensure_ascii=False)}"


def _swap_role(idp: LiveIdP, old: str, new: str) -> None:
    idp.run_cli("admin", "revoke", DEMO_CITIZEN_ID, "--role", old)
    idp.run_cli("admin", "grant", DEMO_CITIZEN_ID, "--role", new)


def test_every_console_page_passes_axe_on_desktop_and_phone(console_idp, browser):
    idp = console_idp
    # bypass_csp: axe is injected as an inline script, which the pages' CSP refuses.
    with open_context(browser, viewport=DESKTOP, bypass_csp=True) as context:
        page = context.new_page()
        foreign: list[str] = []
        page.on("request", lambda r: foreign.append(r.url)
                if urlsplit(r.url).hostname not in ("127.0.0.1", None) else None)
        sign_in(page, idp.base_url, "/admin/dashboard", DEMO_CITIZEN_ID, DEMO_CITIZEN_PASSWORD,
                lands="**/login/step-up?**")
        page.goto(idp.url("/admin/dashboard"))
        page.click("#step-up")
        page.wait_for_url("**/login/step-up?**")
        sent_after = time.time() - 1
        page.locator("#stepup-sms button[type=submit]").click()
        page.fill("#sms-code", idp.sms_code(DEMO_PHONE, "stepup", after=sent_after))
        page.locator("#sms-code").press("Enter")
        page.wait_for_url("**/admin/dashboard")
        expect(page.locator("canvas#by-channel")).to_be_visible()
        # Chart.js drew (a canvas with pixels), from this site's own copy
        assert page.evaluate("typeof Chart") == "function"

        page.goto(idp.url("/admin/clients"))
        client_id = page.locator("ul.clients li.item:not([data-client=admin-console])"
                                 ).first.get_attribute("data-client")
        person_id = None
        for role, paths in ROLE_PAGES.items():
            if role == "security_admin":
                _swap_role(idp, "system_admin", "security_admin")
                page.goto(idp.url("/admin/people"))
                page.fill("#people-search input[name=q]", OTHER_ID)
                page.click("#people-search button[type=submit]")
                person_id = page.locator("ul.people li.item").first.get_attribute("data-person")
                assert OTHER_ID not in page.content()
            elif role == "audit_admin":
                _swap_role(idp, "security_admin", "audit_admin")
            for path in paths:
                url = idp.url(path.format(client=client_id, person=person_id))
                for size, viewport in (("desktop", DESKTOP), ("phone", PHONE_VIEWPORT)):
                    page.set_viewport_size(viewport)
                    resp = page.goto(url)
                    assert resp.status == 200, (path, resp.status)
                    _axe(page, f"{path} ({size})")
                    if size == "phone":
                        wide = page.evaluate(WIDER_THAN_SCREEN)
                        assert not wide, (path, wide)  # which elements stick out, if any
                        assert_fits_width(page, f"{path} on a phone")
        # the audit administrator sees the log and nothing else
        assert page.goto(idp.url("/admin/people")).status == 403
        assert not foreign, f"pages loaded from another site: {foreign[:5]}"
