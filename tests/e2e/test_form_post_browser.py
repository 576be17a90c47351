"""Headless Chromium: ``response_mode=form_post`` under the page's real CSP. With scripts
the page posts the response to the relying party by itself; with scripts off the person
sees a button (in <noscript>) and the same post follows its press."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlencode

import pytest
from playwright.sync_api import expect

from .browser import fill_login, open_context
from .conftest import LiveIdP, provider, running

pytestmark = pytest.mark.browser

CITIZEN_ID = "11010519491231002X"
PASSWORD = "Form-Post-Password-1"


@contextlib.contextmanager
def posting_site(port: int) -> Iterator[queue.Queue]:
    """A relying party that is only its redirect URI, receiving form posts."""
    got: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            got.put({k: v[0] for k, v in parse_qs(body).items()})
            page = b"<!doctype html><p id=arrived>ok</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def form_post_idp(tmp_path_factory) -> Iterator[tuple[LiveIdP, str, queue.Queue]]:
    with provider(tmp_path_factory, "form-post-idp", span=2) as idp:
        idp.run_cli("init")
        idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "钱七",
                    "--password", PASSWORD, "--phone", "13912345671")
        redirect_uri = f"http://127.0.0.1:{idp.port + 1}/cb"
        idp.run_cli("client", "add", "--client-id", "fp-site", "--name", "表单回传网站",
                    "--redirect-uri", redirect_uri, "--first-party")
        with posting_site(idp.port + 1) as got, running(idp):
            yield idp, redirect_uri, got


def _authorize(idp: LiveIdP, redirect_uri: str, state: str) -> str:
    return idp.url("/authorize?" + urlencode({
        "response_type": "code", "client_id": "fp-site", "redirect_uri": redirect_uri,
        "scope": "openid", "state": state, "nonce": "n", "response_mode": "form_post",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"}))


@pytest.mark.parametrize("scripts", [True, False], ids=["scripts", "no-scripts"])
def test_form_post_reaches_the_relying_party(form_post_idp, browser, scripts):
    idp, redirect_uri, got = form_post_idp
    with open_context(browser, java_script_enabled=scripts) as ctx:
        page = ctx.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        state = f"s-{scripts}"
        page.goto(_authorize(idp, redirect_uri, state))
        page.wait_for_url(idp.url("/login?**"))
        fill_login(page, CITIZEN_ID, PASSWORD)
        if not scripts:
            # The response page waits for the person: its button is on screen.
            button = page.locator("#oidc-form-post button[type=submit]")
            expect(button).to_be_visible()
            button.click()
        page.wait_for_url(redirect_uri)
        expect(page.locator("#arrived")).to_have_text("ok")
        posted = got.get(timeout=10)
        assert posted["state"] == state and posted["code"] and posted["iss"] == idp.issuer
        assert not violations, violations
