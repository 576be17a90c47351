"""Headless Chromium for the browser tests: one way to launch it, open a context, sign in
on the provider's login page, take a screenshot and check that a page fits its screen.

The ``browser`` fixture (conftest.py) is ``chromium()`` for a whole test module.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from .conftest import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
# No sandbox (containers), and nothing Chromium would fetch or update on its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000  # generous: the suite must pass on a busy machine
# expect() waits on page state; its own 5 s default is too short on a loaded machine.
expect.set_options(timeout=TIMEOUT_MS)

PHONE_VIEWPORT = {"width": 390, "height": 844}
KIOSK_VIEWPORT = {"width": 1080, "height": 1920}
# A phone proper: its viewport, touch, and the mobile meta-viewport rules.
PHONE = {"viewport": PHONE_VIEWPORT, "is_mobile": True, "has_touch": True}

SUBMIT = "button[type=submit]"


@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator[Browser]:
    """Headless Chromium, with switches of its own for a test that needs them (e.g. a
    fake camera); closed afterwards."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args],
                                     headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def landing_site(port: int) -> Iterator[None]:
    """A relying party that is only its redirect URI: a tiny server on 127.0.0.1:port saying
    "ok", so that a browser sent there ends on a loaded page rather than on an error page
    whose late navigation would cut off the test's next one."""
    server = HTTPServer(("127.0.0.1", port), _Arrived)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


class _Arrived(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        body = b"<!doctype html><p id=arrived>ok</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def open_context(browser: Browser, **options) -> Iterator[BrowserContext]:
    """A new browser profile, Chinese unless ``locale`` says otherwise; closed afterwards."""
    ctx = browser.new_context(**{"locale": "zh-CN", **options})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


def fill_login(page: Page, id_number: str, password: str, *, submit: str = SUBMIT) -> None:
    """Type the credentials into the login page on screen and send the form."""
    page.fill("#username", id_number)
    page.fill("#password", password)
    page.click(submit)


def sign_in(page: Page, base: str, path: str, id_number: str, password: str, *,
            lands: str | None = None) -> None:
    """Open ``path`` signed out, sign in on the login page it leads to, and arrive at
    ``lands`` (by default back at ``path``)."""
    page.goto(base + path)
    page.wait_for_url(base + "/login?**")
    fill_login(page, id_number, password)
    page.wait_for_url(lands or base + path)


def screenshot(page: Page, name: str) -> Path:
    """The whole page, as test-artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    return shot


def assert_fits_width(page: Page, what: str) -> int:
    """The page does not scroll sideways; the window's inner width."""
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"{what}: the page scrolls sideways"
    return inner_width
