"""Headless Chromium: the consent page lists the claims a relying party asks for by name
(OIDC ``claims`` parameter) beside the scopes, marks the essential one, lets the person
withhold it with its checkbox (axe-core clean), and what was withheld is absent at
userinfo while the rest is released."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from playwright.sync_api import expect

from .browser import fill_login, landing_site, open_context
from .conftest import LiveIdP, provider, running
from .oauth import pkce_pair, query

pytestmark = pytest.mark.browser

CITIZEN_ID = "11010519491231002X"
PASSWORD = "Claims-Consent-Password-1"
SECRET = "claims-site-secret-0123456789abcdef"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def claims_idp(tmp_path_factory) -> Iterator[tuple[LiveIdP, str]]:
    with provider(tmp_path_factory, "claims-idp", span=2) as idp:
        idp.run_cli("init")
        idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "孙八",
                    "--password", PASSWORD, "--phone", "13912345672")
        redirect_uri = f"http://127.0.0.1:{idp.port + 1}/cb"
        idp.run_cli("client", "add", "--client-id", "claims-site", "--name", "按项授权网站",
                    "--secret", SECRET, "--redirect-uri", redirect_uri)
        with landing_site(idp.port + 1), running(idp):
            yield idp, redirect_uri


def test_person_withholds_an_essential_claim_on_the_consent_page(claims_idp, browser):
    idp, redirect_uri = claims_idp
    verifier, challenge = pkce_pair()
    wanted = {"userinfo": {"phone_number": {"essential": True}, "name": None}}
    # bypass_csp: only so that axe-core can be injected into the page.
    with open_context(browser, bypass_csp=True) as ctx:
        page = ctx.new_page()
        page.goto(idp.url("/authorize?" + urlencode({
            "response_type": "code", "client_id": "claims-site", "redirect_uri": redirect_uri,
            "scope": "openid", "state": "s-claims", "nonce": "n",
            "claims": json.dumps(wanted), "code_challenge": challenge,
            "code_challenge_method": "S256"})))
        page.wait_for_url(idp.url("/login?**"))
        fill_login(page, CITIZEN_ID, PASSWORD)
        page.wait_for_url(idp.url("/consent?**"))
        phone = page.locator("li[data-claim=phone_number]")
        expect(phone).to_contain_text("您的手机号码")
        expect(phone).to_contain_text("应用标注为必需")
        expect(page.locator("li[data-claim=name]")).to_contain_text("您的姓名")
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [(v["id"], v["impact"]) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
        assert not bad, bad
        phone.get_by_role("checkbox").check()
        page.click("button[name=consent][value=allow]")
        page.wait_for_url(redirect_uri + "?**")
        q = query(page.url)
    assert q["state"] == "s-claims" and q["code"]
    tokens = requests.post(idp.url("/token"), auth=("claims-site", SECRET), timeout=10, data={
        "grant_type": "authorization_code", "code": q["code"], "redirect_uri": redirect_uri,
        "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    info = requests.get(idp.url("/userinfo"), timeout=10, headers={
        "Authorization": "Bearer " + tokens.json()["access_token"]}).json()
    assert info["name"] == "孙八" and "phone_number" not in info
