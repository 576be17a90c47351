"""QR scan-to-login: seconds from the tap on "同意" in the app to the website being
signed in (the issue asks for "within a second or two"), in real headless Chromium.

    .venv/bin/python bench/qr_login_latency.py [--rounds 5] [--port 5600]

Starts ``idp serve --demo`` on a throw-away instance (SQLite, embedded store), signs the
demo app simulator in once, then per round: the provincial demo site's login page shows
a QR code, the app "scans" its link and approves, and the clock stops when the browser
is back on the demo site signed in. The login page polls every QR_POLL_INTERVAL_MS.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
IDP = str(ROOT / ".venv" / "bin" / "idp")
CITIZEN, PASSWORD = "110105199003071239", "Demo@2026"


def _wait_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - our own local server
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--port", type=int, default=5600)
    args = ap.parse_args()
    base, site = f"http://localhost:{args.port}", f"http://localhost:{args.port + 1}"
    with tempfile.TemporaryDirectory() as inst:
        env = {**os.environ, "IDP_INSTANCE_PATH": inst, "IDP_ISSUER": base}
        subprocess.run([IDP, "init", "--demo"], env=env, check=True, capture_output=True)
        server = subprocess.Popen([IDP, "serve", "--demo", "--port", str(args.port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_up(base + "/.well-known/openid-configuration")
            _wait_up(site + "/")
            print(f"QR scan-to-login, {args.rounds} rounds: {_measure(base, site, args.rounds)}")
        finally:
            server.terminate()
            server.wait(timeout=20)


def _measure(base: str, site: str, rounds: int) -> str:
    took = []
    with sync_playwright() as p:
        br = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        app = br.new_context(viewport={"width": 390, "height": 844}).new_page()
        app.goto(base + "/demo/app")
        app.click("#sim-login")
        app.fill("#username", CITIZEN)
        app.fill("#password", PASSWORD)
        app.get_by_role("button", name="登录", exact=True).click()
        app.wait_for_selector("text=acr")
        for _ in range(rounds):
            web = br.new_context(viewport={"width": 1280, "height": 900}).new_page()
            web.goto(site + "/")
            web.get_by_role("link", name=re.compile("登录")).first.click()
            web.click("#qr-start")
            # A locator, not wait_for_function: the page's CSP forbids evaluating strings.
            # The link sits in a closed <details> (the QR image is what people use), so
            # wait for it to be there, not to be visible.
            web.locator("#qr-link", has_text="/qr/s/").wait_for(state="attached")
            link = web.text_content("#qr-link").strip()
            app.fill("#sim-ticket", link)
            app.get_by_role("button", name="扫码").click()
            approve = app.get_by_role("button", name="同意").first
            try:
                approve.wait_for(timeout=10_000)
            except Exception:  # noqa: BLE001 - say what the app shows instead
                raise SystemExit(f"app shows no request for {link!r}: "
                                 f"{app.inner_text('body')[:300]!r}") from None
            started = time.monotonic()
            approve.click()
            web.wait_for_url(site + "/**", timeout=15_000)
            web.wait_for_selector("text=已登录")
            took.append(time.monotonic() - started)
            web.context.close()
        br.close()
    took.sort()
    return (f"median {statistics.median(took):.2f} s, max {took[-1]:.2f} s "
            f"({', '.join(f'{t:.2f}' for t in took)})")


if __name__ == "__main__":
    sys.exit(main())
