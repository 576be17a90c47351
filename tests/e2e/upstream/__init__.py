"""A real upstream OpenID Connect provider for the upstream-login tests.

``NodeUpstream`` runs ``server.mjs`` (node-oidc-provider, from tests/e2e/node_modules) on a
loopback port; its people live in a JSON file the test may rewrite between sign-ins.
``sign_in`` plays the person's browser at the upstream with a ``requests`` session: from
the authorization URL our provider redirected to, through the upstream's login form, to
the redirect back to our callback (returned, not followed).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

from ..node_script import ensure_node

HERE = Path(__file__).resolve().parent


class NodeUpstream:
    def __init__(self, *, port: int, workdir: Path, clients: list[dict],
                 id_claim: str = "id_number", claims_in_id_token: bool = True):
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.workdir = Path(workdir)
        self.accounts_path = self.workdir / f"upstream-{port}-accounts.json"
        self.log_path = self.workdir / f"upstream-{port}.log"
        self.env = {**os.environ, "UPSTREAM_PORT": str(port),
                    "UPSTREAM_CLIENTS": json.dumps(clients),
                    "UPSTREAM_ACCOUNTS": str(self.accounts_path), "UPSTREAM_ID_CLAIM": id_claim,
                    "UPSTREAM_CLAIMS_IN_ID_TOKEN": "1" if claims_in_id_token else "0"}
        self.proc: subprocess.Popen | None = None
        self.set_accounts([])

    def set_accounts(self, accounts: list[dict]) -> None:
        tmp = self.accounts_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"accounts": accounts}, ensure_ascii=False), "utf-8")
        tmp.replace(self.accounts_path)  # the server never reads half a file

    def start(self, timeout: float = 20) -> NodeUpstream:
        node = ensure_node("oidc-provider")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        self.proc = subprocess.Popen([node, str(HERE / "server.mjs")], env=self.env, cwd=HERE,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"upstream exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration",
                                timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"upstream not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> NodeUpstream:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _follow(browser: requests.Session, resp: requests.Response, stop_at: str,
            limit: int = 10) -> str:
    for _ in range(limit):
        if resp.status_code not in (301, 302, 303, 307, 308):
            raise AssertionError(f"upstream answered {resp.status_code} at {resp.url}: "
                                 f"{resp.text[:500]}")
        location = urljoin(resp.url, resp.headers["Location"])
        if location.startswith(stop_at):
            return location
        resp = browser.get(location, allow_redirects=False, timeout=10)
    raise AssertionError("too many redirects at the upstream")


def sign_in(browser: requests.Session, authorize_url: str, stop_at: str, *, username: str,
            password: str, cancel: bool = False) -> str:
    """Sign in (or cancel) at the upstream; the URL of the redirect back to ``stop_at``."""
    page = browser.get(authorize_url, timeout=10)
    assert page.status_code == 200, (page.status_code, page.text[:500])
    action = re.search(r'action="(/interaction/[^"]+/(?:login))"', page.text)
    assert action, page.text[:500]
    if cancel:
        target = action.group(1).rsplit("/", 1)[0] + "/abort"
        resp = browser.post(urljoin(page.url, target), allow_redirects=False, timeout=10)
    else:
        resp = browser.post(urljoin(page.url, action.group(1)), allow_redirects=False,
                            data={"username": username, "password": password}, timeout=10)
    return _follow(browser, resp, stop_at)
