"""The admin console in headless Chromium against ``idp serve`` on PostgreSQL + Redis:
a reviewer (role granted by ``idp admin grant``) signs in with a password, is told the
console needs a higher level, steps up with the SMS code from the dev outbox on the
provider's own step-up page, comes back through the console's callback, and approves a
queued legacy account.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from .browser import PHONE_VIEWPORT, open_context, sign_in
from .conftest import (
    DEMO_CITIZEN_ID,
    DEMO_CITIZEN_PASSWORD,
    DEMO_PHONE,
    LiveIdP,
    provider,
    running,
)

pytestmark = pytest.mark.browser

ROW_NUMBER = "11010519491231002X"


@pytest.fixture(scope="module")
def admin_idp(tmp_path_factory) -> Iterator[LiveIdP]:
    with provider(tmp_path_factory, "admin-idp") as idp:
        path = idp.instance_path
        idp.run_cli("init", "--demo")  # the demo citizen's account is at L3
        idp.run_cli("user", "add", "--id-number", ROW_NUMBER, "--name", "李四",
                    "--password", "long-enough-1")
        (path / "users.csv").write_bytes(
            f"用户编号,姓名,身份证号\nu2,李斯,{ROW_NUMBER}\n".encode("gbk"))
        (path / "shebao.toml").write_text(
            '[source]\nname = "shebao-2012"\nkind = "csv"\n\n'
            '[fields]\nlegacy_id = "用户编号"\nname = "姓名"\nid_number = "身份证号"\n\n'
            '[csv]\npath = "users.csv"\n', encoding="utf-8")
        assert idp.run_cli("legacy", "import", "--config", str(path / "shebao.toml"))[
            "queued"] == 1
        idp.run_cli("admin", "grant", DEMO_CITIZEN_ID, "--role", "reviewer")
        with running(idp):
            yield idp


def test_reviewer_approves_a_queued_account(admin_idp, browser):
    with open_context(browser, viewport=PHONE_VIEWPORT) as context:
        page = context.new_page()
        # A password alone is L2: the sign-in ends on the step-up page.
        sign_in(page, admin_idp.base_url, "/admin/review", DEMO_CITIZEN_ID,
                DEMO_CITIZEN_PASSWORD, lands="**/login/step-up?**")

        page.goto(admin_idp.url("/admin/review"))
        expect(page.locator("h1")).to_have_text("需要更高认证等级")
        page.click("#step-up")  # the console's own request at L3, again
        page.wait_for_url("**/login/step-up?**")
        sms = page.locator("#stepup-sms")
        expect(sms).to_contain_text("138****8000")
        sent_after = time.time() - 1
        sms.locator("button[type=submit]").click()
        page.fill("#sms-code", admin_idp.sms_code(DEMO_PHONE, "stepup", after=sent_after))
        page.locator("#sms-code").press("Enter")
        # Raised in place (same session): through /authorize and the callback, back.
        page.wait_for_url("**/admin/review")
        item = page.locator("#queue li.item").first
        expect(item).to_contain_text("shebao-2012:u2")
        expect(item).to_contain_text("110105********002X")
        assert ROW_NUMBER not in page.content() and "李斯" not in page.content()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the queue scrolls sideways on a phone ({width}px)"

        item.locator("a").first.click()
        expect(page.locator(".item.person")).to_have_count(1)  # the candidate, masked
        page.fill("#approve input[name=note]", "同一人，曾用名")
        page.click("#approve button[type=submit]")
        expect(page.locator("p.ok")).to_contain_text("已批准")
        expect(page.locator("h1 .state")).to_have_text("已批准")
    approved = admin_idp.run_cli("merge", "list", "--state", "approved")["items"]
    assert [(a["legacy_id"], a["state"]) for a in approved] == [("u2", "approved")]
