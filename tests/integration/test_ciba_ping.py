"""CIBA ping mode (CIBA Core §10.2): the client's notification endpoint is told, with its
client_notification_token, when the citizen decides; it then fetches the tokens."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from idp.clients import CIBA, ClientError, register_client
from tests.helpers import RP

from .test_ciba import approve, bc, poll


@pytest.fixture
def notifications():
    got: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.put({"auth": self.headers.get("Authorization"), "body": json.loads(body),
                     "type": self.headers.get("Content-Type")})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/ciba/notify", got
    srv.shutdown()


def _ping_client(endpoint: str) -> RP:
    secret = "secret-hall-ping-0123456789abcdef"
    register_client(client_id="hall-ping", name="窗口", secret=secret,
                    auth_method="client_secret_basic", redirect_uris=[], grant_types=[CIBA],
                    first_party=True, channel="hall",
                    security={"backchannel_token_delivery_mode": "ping",
                              "backchannel_client_notification_endpoint": endpoint})
    return RP("hall-ping", secret)


def test_ping_notifies_the_client_then_it_fetches_the_tokens(ctx, client, person,
                                                              notifications, monkeypatch):
    monkeypatch.setitem(ctx.config, "CLIENT_FETCH_ALLOW_PRIVATE", True)
    endpoint, got = notifications
    rp = _ping_client(endpoint)
    assert bc(client, rp).get_json()["error"] == "invalid_request"  # no notification token
    resp = bc(client, rp, client_notification_token="cnt-8f3a")
    assert resp.status_code == 200, resp.get_json()
    aid = resp.get_json()["auth_req_id"]
    assert got.empty()
    approve(aid)
    note = got.get(timeout=10)  # the notification thread has delivered it
    assert note == {"auth": "Bearer cnt-8f3a", "body": {"auth_req_id": aid},
                    "type": "application/json"}
    tokens = poll(client, rp, aid)
    assert tokens.status_code == 200 and tokens.get_json()["id_token"]


def test_notification_token_is_sealed_in_the_store(ctx, client, person, notifications,
                                                   monkeypatch):
    """The client_notification_token is a bearer credential: the request's store record
    keeps it SM4-GCM sealed, never as sent; the notification still carries it."""
    from idp.channels import ciba_ping
    from idp.store import store

    monkeypatch.setitem(ctx.config, "CLIENT_FETCH_ALLOW_PRIVATE", True)
    endpoint, got = notifications
    rp = _ping_client(endpoint)
    secret = "cnt-sealed-7d1e9b4c2a"
    aid = bc(client, rp, client_notification_token=secret).get_json()["auth_req_id"]
    record = store().get(f"approval:{aid}")
    assert record is not None and secret not in json.dumps(record)
    sealed = record["extra"]["ping"]["token_sealed"]
    assert ctx.extensions["idp.fieldcrypto"].decrypt(sealed, "ciba-ping") == secret
    approve(aid)
    assert got.get(timeout=10)["auth"] == f"Bearer {secret}"
    # A record whose seal does not open sends nothing (and does not fail the decision).
    from idp.channels.approvals import get

    a = get(aid)
    a.extra["ping"]["token_sealed"] = sealed[:-4] + "AAAA"
    assert ciba_ping.notify(a) is None


def test_ping_endpoint_must_be_https_and_public(ctx):
    for endpoint in ("http://rp.example/notify", "https://10.0.0.5/notify", None):
        with pytest.raises(ClientError):
            _ping_client(endpoint)


def test_discovery_offers_poll_and_ping(client):
    assert client.get("/.well-known/openid-configuration").get_json()[
        "backchannel_token_delivery_modes_supported"] == ["poll", "ping"]
