"""RP-initiated logout 1.0 and Back-Channel Logout 1.0."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from tests.helpers import authorize_url, form_fields, make_client, query, tokens_for


class Receiver:
    """A relying party's back-channel logout endpoint on loopback."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0):
        self.tokens: list[str] = []
        self.attempts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                outer.attempts += 1
                time.sleep(delay)
                if outer.attempts <= fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.tokens.append(parse_qs(body)["logout_token"][0])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/bc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int = 1, timeout: float = 5.0) -> list[str]:
        end = time.time() + timeout
        while len(self.tokens) < n and time.time() < end:
            time.sleep(0.02)
        return self.tokens

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _claims(client, token, typ=None):
    decoded = jwt.decode(token, KeySet.import_key_set(client.get("/jwks").get_json()),
                         algorithms=["ES256", "RS256"])
    if typ:
        assert decoded.header["typ"] == typ
    return decoded.claims


def _logout_url(**params):
    return "/logout?" + urlencode(params)


def test_logout_with_hint_ends_session_and_notifies_every_client(client, person, receiver):
    a = make_client("a", first_party=True, backchannel=receiver.url)
    b = make_client("b", first_party=True, backchannel=receiver.url)
    ta = tokens_for(client, a)
    tokens_for(client, b)
    sid = _claims(client, ta["id_token"])["sid"]
    resp = client.get(_logout_url(id_token_hint=ta["id_token"], state="st",
                                  post_logout_redirect_uri="https://rp.example/bye"))
    assert resp.status_code == 302
    assert resp.headers["Location"] == "https://rp.example/bye?state=st"
    tokens = receiver.wait(2)
    assert len(tokens) == 2
    auds = set()
    for tok in tokens:
        c = _claims(client, tok, typ="logout+jwt")
        assert c["sid"] == sid and c["sub"] == person.id and c["iss"] == "http://localhost"
        assert "http://schemas.openid.net/event/backchannel-logout" in c["events"]
        assert "nonce" not in c and c["jti"]
        auds.add(c["aud"])
    assert auds == {"a", "b"}
    # The SSO session is gone.
    resp = client.get(authorize_url(a, prompt="none"))
    assert query(resp.headers["Location"])["error"] == "login_required"


def test_unregistered_post_logout_redirect_is_refused(client, person):
    a = make_client("a", first_party=True)
    ta = tokens_for(client, a)
    resp = client.get(_logout_url(id_token_hint=ta["id_token"],
                                  post_logout_redirect_uri="https://evil.example/"))
    assert resp.status_code == 400 and "Location" not in resp.headers
    # Still signed in.
    resp = client.get(authorize_url(a, prompt="none"))
    assert "code" in query(resp.headers["Location"])


def test_redirect_without_any_client_identification_is_refused(client, person):
    resp = client.get(_logout_url(post_logout_redirect_uri="https://rp.example/bye"))
    assert resp.status_code == 400


@pytest.mark.parametrize("hint", ["garbage", "a.b.c"])
def test_malformed_id_token_hint_is_an_error_page(client, hint):
    resp = client.get(_logout_url(id_token_hint=hint))
    assert resp.status_code == 400 and "id_token_hint" in resp.get_data(as_text=True)


def test_id_token_hint_signed_by_someone_else_is_refused(client, person):
    a = make_client("a", first_party=True)
    tokens_for(client, a)
    forged = jwt.encode({"alg": "ES256"}, {"iss": "http://localhost", "aud": "a", "sub": "x",
                                          "sid": "s"}, ECKey.generate_key("P-256"))
    resp = client.get(_logout_url(id_token_hint=forged))
    assert resp.status_code == 400
    resp = client.get(authorize_url(a, prompt="none"))
    assert "code" in query(resp.headers["Location"])


def test_client_id_must_match_hint(client, person):
    a = make_client("a", first_party=True)
    make_client("b", first_party=True)
    ta = tokens_for(client, a)
    resp = client.get(_logout_url(id_token_hint=ta["id_token"], client_id="b"))
    assert resp.status_code == 400


def test_without_hint_the_person_confirms_and_csrf_is_checked(client, person):
    a = make_client("a", first_party=True)
    tokens_for(client, a)
    page = client.get(_logout_url(client_id="a", post_logout_redirect_uri="https://rp.example/bye"))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "退出" in html
    fields = form_fields(html)
    no_csrf = {k: v for k, v in fields.items() if k != "csrf_token"}
    assert client.post("/logout", data=no_csrf).status_code == 400
    resp = client.get(authorize_url(a, prompt="none"))
    assert "code" in query(resp.headers["Location"])  # a forged POST logged nobody out
    resp = client.post("/logout", data=fields)
    assert resp.status_code == 302 and resp.headers["Location"] == "https://rp.example/bye"
    resp = client.get(authorize_url(a, prompt="none"))
    assert query(resp.headers["Location"])["error"] == "login_required"


def test_failed_deliveries_are_retried(client, person):
    flaky = Receiver(fail_first=2)
    try:
        a = make_client("a", first_party=True, backchannel=flaky.url)
        ta = tokens_for(client, a)
        client.get(_logout_url(id_token_hint=ta["id_token"]))
        assert len(flaky.wait(1)) == 1 and flaky.attempts == 3
    finally:
        flaky.close()


def test_slow_relying_party_does_not_block_logout(client, person):
    slow = Receiver(delay=2.0)
    try:
        a = make_client("a", first_party=True, backchannel=slow.url)
        ta = tokens_for(client, a)
        start = time.monotonic()
        resp = client.get(_logout_url(id_token_hint=ta["id_token"]))
        assert resp.status_code == 200 and time.monotonic() - start < 1.0
        assert "您已安全退出" in resp.get_data(as_text=True)
    finally:
        slow.close()
