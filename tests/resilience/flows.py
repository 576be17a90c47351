"""A provider built on the given store/database settings, and the sign-in, SSO and
logout steps the resilience tests drive through it (Flask's test client: the point is
the servers behind the provider, not HTTP)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

from tests.helpers import (
    authorize_url,
    exchange,
    get_code,
    make_client,
    make_person,
    query,
)


def provider(instance_path: str, **overrides):
    from idp import create_app
    from idp.bootstrap import initialise

    app = create_app({"ISSUER": "http://localhost", "ARGON2_TIME_COST": 1,
                      "ARGON2_MEMORY_COST": 8 * 1024, "BACKCHANNEL_LOGOUT_BACKOFF": 0.05,
                      "KEK": secrets.token_hex(32), **overrides},
                     instance_path=instance_path)
    app.config["TESTING"] = True
    with app.app_context():
        initialise()
    return app


def seed(app, rp_ids=("rp1", "rp2")):
    with app.app_context():
        make_person()
        return [make_client(cid, first_party=True) for cid in rp_ids]


def sign_in(app, browser, rp) -> dict:
    """Password sign-in (or SSO if ``browser`` already has a session) and the code
    exchanged for tokens."""
    with app.app_context():
        code, _q, verifier = get_code(browser, rp)
        resp = exchange(browser, rp, code, verifier)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def sso_code(app, browser, rp) -> str | None:
    """A code without any password page (SSO), or None when the provider asks to log in."""
    with app.app_context():
        resp = browser.get(authorize_url(rp))
        for _ in range(3):
            if resp.status_code != 302:
                break
            loc = resp.headers["Location"]
            if urlsplit(loc).path == "/login":
                return None
            if loc.startswith(rp.redirect_uri):
                return query(loc).get("code")
            resp = browser.get(loc)
    raise AssertionError(f"unexpected answer {resp.status_code}")


def logout(app, browser, id_token: str) -> None:
    """RP-initiated logout with the ID token as hint: ends the session at once."""
    with app.app_context():
        resp = browser.get("/logout?" + urlencode({"id_token_hint": id_token}))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]


def userinfo(app, browser, access_token: str) -> int:
    with app.app_context():
        return browser.get("/userinfo",
                           headers={"Authorization": "Bearer " + access_token}).status_code


class Load:
    """A steady stream of /userinfo calls (each a revocation check in the store and a
    person read from the database) from a few threads, recording every answer, so a
    fault's cost can be told: requests failed, and seconds until answers were good again."""

    def __init__(self, app, access_token: str, threads: int = 3):
        import threading

        self.app, self.token = app, access_token
        self.answers: list[tuple[float, int]] = []
        self.escaped: list[str] = []  # exceptions the app let through (should be none)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        import time

        browser = self.app.test_client()
        while not self._stop.is_set():
            try:
                status = userinfo(self.app, browser, self.token)
            except Exception as exc:  # noqa: BLE001 - escaping the app counts as a failure
                import traceback

                self.escaped.append("".join(traceback.format_exception(exc))[-3000:])
                status = 599
            self.answers.append((time.monotonic(), status))
            self._stop.wait(0.02)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def wait_good(self, since: float, count: int = 10, timeout: float = 30) -> None:
        """Until ``count`` good answers in a row came after ``since``."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tail = [s for t, s in self.answers if t > since][-count:]
            if len(tail) == count and all(s == 200 for s in tail):
                return
            time.sleep(0.05)
        raise AssertionError(f"no recovery within {timeout}s")

    def cost(self, since: float) -> dict:
        after = [(t, s) for t, s in self.answers if t >= since]
        failed = [(t, s) for t, s in after if s != 200]
        recovered = (max(t for t, _ in failed) - since) if failed else 0.0
        return {"requests": len(after), "failed": len(failed), "escaped": self.escaped[:1],
                "statuses": sorted({s for _, s in failed}),
                "seconds_to_recovery": round(recovered, 2)}
