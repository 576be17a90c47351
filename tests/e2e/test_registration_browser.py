"""个人注册 and 找回密码 end to end against ``idp serve``:

* openid-client (Node) starts a registration with ``prompt=create`` and receives a code
  and tokens for the new account, driving the form by its contract names only;
* headless Chromium registers through ``prompt=create`` and recovers a password from the
  login page's 忘记密码 link, on a phone (390×844), a desktop and a kiosk (1080×1920), in
  Chinese and in English, with axe-core run on every page of the journeys (no serious or
  critical violation) and the pages fitting the screen.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import Page

from .browser import KIOSK_VIEWPORT, PHONE, assert_fits_width, open_context, screenshot
from .conftest import E2E_DIR, LiveIdP, provider, running
from .node_script import NodeScript, ensure_node
from .oauth import pkce_pair, query, redeem_code
from .rp_result import ok

pytestmark = pytest.mark.browser

REDIRECT = "https://rp.example/register/cb"  # intercepted: the browser never leaves
NODE_REDIRECT = "http://127.0.0.1/rp/register-cb"
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
KIOSK = {"viewport": KIOSK_VIEWPORT, "has_touch": True}
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def citizen_id(seq: int) -> str:
    """A valid resident ID number (GB 11643 MOD 11-2 check character) for test ``seq``."""
    first17 = f"11010119850615{seq:03d}"
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> Iterator[tuple[LiveIdP, dict, dict]]:
    with provider(tmp_path_factory, "register-idp") as live:
        live.run_cli("init")
        # The hall console's counter client, as `idp init --demo` would make it (its
        # secret where the console reads it); the whole demo set is not needed here.
        hall = live.run_cli("client", "add", "--client-id", "demo-hall", "--name", "大厅窗口",
                            "--channel", "hall", "--grant-type", "ciba", "--in-person-checks")
        (live.instance_path / "demo_clients.json").write_text(
            json.dumps({"demo-hall": hall["client_secret"]}), encoding="utf-8")
        web = live.run_cli("client", "add", "--client-id", "reg-web", "--name", "网上办事大厅",
                           "--redirect-uri", REDIRECT)
        rp = live.run_cli("client", "add", "--client-id", "reg-node", "--name", "注册测试应用",
                          "--redirect-uri", NODE_REDIRECT)
        with running(live):
            yield live, web, rp


def test_openid_client_registers_with_prompt_create_and_gets_tokens(idp):
    live, _, rp = idp
    node = ensure_node("openid-client")
    person = {"id_number": citizen_id(1), "name": "赵六", "phone": "13600000001",
              "password": "Lantern-Rain-42"}
    config = {"issuer": live.issuer, "person": person,
              "client": {"client_id": rp["client_id"], "client_secret": rp["client_secret"],
                         "redirect_uri": NODE_REDIRECT,
                         "token_endpoint_auth_method": "client_secret_basic"}}
    import time

    started = time.time()
    with NodeScript(node, "register_flow.mjs", config, idp=live, timeout=60) as run:
        run.wait("waiting", "sms_code")
        run.send(live.sms_code(person["phone"], "register", after=started - 1))
        result = run.result()
    assert "create" in ok(result, "discovery")["prompt_values"]
    page = ok(result, "authorize")
    assert page["path"] == "/register" and page["has_csrf_token"] and page["has_rid"]
    assert ok(result, "send_code")["status"] == 200
    claims = ok(result, "callback")["claims"]  # openid-client checked state, nonce, PKCE
    assert claims["name"] == "赵六" and claims["acr"] == "L3"  # dev register confirmed
    assert claims["id_number_masked"] == person["id_number"][:6] + "********" + \
        person["id_number"][-4:]
    assert ok(result, "userinfo")["sub"] == claims["sub"]


# -- Chromium ------------------------------------------------------------------------

AXE = E2E_DIR / "node_modules" / "axe-core" / "axe.min.js"


def axe_check(page: Page, what: str) -> None:
    """axe-core on the page as shown: no serious or critical violation."""
    if not AXE.exists():
        ensure_node("axe-core")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(Path(AXE).read_text(encoding="utf-8"))
    found = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
          .map(v => ({id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    assert found == [], f"{what}: axe-core found {found}"


def check_page(page: Page, name: str) -> None:
    axe_check(page, name)
    assert_fits_width(page, name)
    screenshot(page, name)


# Each journey on each screen size, both languages across them (every page of both
# journeys is thus checked in both languages on some size, in six browser runs).
REGISTER_RUNS = [
    pytest.param(PHONE, "zh-CN", id="phone-zh"),
    pytest.param(DESKTOP, "en", id="desktop-en"),
    pytest.param(KIOSK, "en", id="kiosk-en"),
]
RECOVER_RUNS = [
    pytest.param(PHONE, "en", id="phone-en"),
    pytest.param(DESKTOP, "zh-CN", id="desktop-zh"),
    pytest.param(KIOSK, "zh-CN", id="kiosk-zh"),
]
_SEQ = {"n": 10}


def _next_person():
    _SEQ["n"] += 1
    n = _SEQ["n"]
    return citizen_id(n), f"1360000{n:04d}"


@pytest.mark.parametrize(("device", "locale"), REGISTER_RUNS)
def test_registration_with_prompt_create_in_the_browser(idp, browser, device, locale):
    import time

    live, web, _ = idp
    number, phone = _next_person()
    en = locale == "en"
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    url = live.url("/authorize?" + urlencode({
        "response_type": "code", "client_id": web["client_id"], "redirect_uri": REDIRECT,
        "scope": "openid profile", "state": state, "nonce": "n", "prompt": "create",
        "code_challenge": challenge, "code_challenge_method": "S256",
        **({"ui_locales": "en"} if en else {})}))
    with open_context(browser, locale=locale, bypass_csp=True, **device) as ctx:
        landed: list[str] = []

        def at_rp(route):
            landed.append(route.request.url)
            route.fulfill(status=200, content_type="text/html", body="<p id=rp>ok</p>")

        ctx.route(REDIRECT + "**", at_rp)
        page = ctx.new_page()
        page.goto(url)
        assert urlsplit(page.url).path == "/register"
        if en and "Register" not in page.content():
            page.goto(page.url + "&lang=en")
        heading = page.locator("h1").inner_text()
        assert heading == ("Register" if en else "个人注册")
        tag = f"register-{locale}-{device['viewport']['width']}"
        check_page(page, f"{tag}-form")
        # A mistyped check digit is explained at the field, and the page stays usable.
        page.get_by_label("ID number" if en else "证件号码", exact=True).fill(number[:-1] + (
            "0" if number[-1] != "0" else "1"))
        page.locator("#name").fill("孙七")
        page.locator("#phone").fill(phone)
        page.locator("#sms_code").fill("123456")
        page.locator("#password").fill("Lantern-Rain-42")
        page.locator("button[value=register]:not(.default-submit)").click()
        page.locator("#id_number-error").wait_for()
        assert page.locator("#id_number").get_attribute("aria-invalid") == "true"
        check_page(page, f"{tag}-error")
        page.locator("#id_number").fill(number)
        sent_at = time.time()
        page.locator("button[value=send_code]").click()
        page.locator("[role=status]").wait_for()
        code = live.sms_code(phone, "register", after=sent_at - 1)
        check_page(page, f"{tag}-sent")
        page.locator("#sms_code").fill(code)
        page.locator("#password").fill("Lantern-Rain-42")
        # Enter in the password field registers (the form's default button), not "send".
        page.locator("#password").press("Enter")
        page.wait_for_url(lambda u: urlsplit(u).path in ("/consent",) or u.startswith(REDIRECT))
        if urlsplit(page.url).path == "/consent":
            check_page(page, f"{tag}-consent")
            page.locator("button[value=allow]").click()
            page.wait_for_url(REDIRECT + "**")
    assert landed, "the relying party was never reached"
    q = query(landed[-1])
    assert q["state"] == state and "code" in q
    claims = redeem_code(live, web["client_id"], web["client_secret"], q["code"], REDIRECT,
                         verifier)
    assert claims["name"] == "孙七" and set(claims["amr"]) == {"pwd", "sms"}


@pytest.mark.parametrize(("device", "locale"), RECOVER_RUNS)
def test_recovery_from_the_login_page_in_the_browser(idp, browser, device, locale):
    import time

    live, _, _ = idp
    number, phone = _next_person()
    live.run_cli("user", "add", "--id-number", number, "--name", "周八", "--password",
                 "Old-Password-1", "--phone", phone)
    en = locale == "en"
    with open_context(browser, locale=locale, bypass_csp=True, **device) as ctx:
        page = ctx.new_page()
        page.goto(live.url("/login" + ("?lang=en" if en else "")))
        page.get_by_role("link", name="Forgot password" if en else "忘记密码").click()
        assert urlsplit(page.url).path == "/recover"
        tag = f"recover-{locale}-{device['viewport']['width']}"
        check_page(page, f"{tag}-form")
        page.locator("#id_number").fill(number)
        page.locator("#name").fill("周八")
        page.locator("#phone").fill(phone)
        sent_at = time.time()
        page.locator("button[value=send_code]").click()
        page.locator("[role=status]").wait_for()
        code = live.sms_code(phone, "recover", after=sent_at - 1)
        check_page(page, f"{tag}-sent")
        page.locator("#sms_code").fill(code)
        page.locator("#new_password").fill("Harbour-Lights-77")
        page.locator("button[value=reset]:not(.default-submit)").click()
        page.get_by_role("heading", name="Password reset" if en else "密码已重置").wait_for()
        check_page(page, f"{tag}-done")
        again = "Sign in with the new password" if en else "用新密码登录"
        page.get_by_role("link", name=again).click()
        page.locator("#username").fill(number)
        page.locator("#password").fill("Harbour-Lights-77")
        page.locator("form button[type=submit]").first.click()
        page.wait_for_url(live.url("/"))
        # The other ways in, for a lost phone: each page passes axe too.
        for path in ("/recover/face", "/recover/code"):
            page.goto(live.url(path + ("?lang=en" if en else "")))
            check_page(page, f"{tag}{path.replace('/', '-')}")


def test_a_clerk_issues_a_reset_code_and_the_citizen_resets_with_it(idp, browser):
    live, _, _ = idp
    number, phone = _next_person()
    live.run_cli("user", "add", "--id-number", number, "--name", "吴九", "--password",
                 "Old-Password-1", "--phone", phone)
    with open_context(browser, bypass_csp=True, **DESKTOP) as ctx:
        clerk = ctx.new_page()
        clerk.goto(live.url("/demo/hall"))
        clerk.get_by_role("link", name="群众手机丢失、需重置密码？当面核验后生成重置码").click()
        check_page(clerk, "hall-reset-form")
        clerk.locator("#login_hint").fill(number)
        clerk.get_by_label("已当面核对居民身份证原件，证件与本人一致").check()
        clerk.locator("form button[type=submit]").click()
        code = clerk.locator("#reset-code").inner_text()
        check_page(clerk, "hall-reset-slip")
    with open_context(browser, bypass_csp=True, **KIOSK) as ctx:
        page = ctx.new_page()
        page.goto(live.url("/recover/code"))
        page.locator("#id_number").fill(number)
        page.locator("#name").fill("吴九")
        page.locator("#reset_code").fill(code.replace("-", " "))
        page.locator("#new_password").fill("Harbour-Lights-77")
        page.locator("form button[type=submit]").click()
        page.get_by_role("heading", name="密码已重置").wait_for()
        check_page(page, "hall-reset-done")
