"""A malformed chunked body on the wire, sent to the real server (``idp serve``, gunicorn):
gunicorn raises its own parse errors while the app reads the body, which only a real
server shows (issue 10, item 7)."""

from __future__ import annotations

import json
import socket

import pytest

from .conftest import provider, running

BROKEN_BODIES = [
    b"zz\r\ngrant_type=x\r\n0\r\n\r\n",     # chunk size not hexadecimal
    b"-1\r\n\r\n",                           # negative chunk size
    b"3\r\nabcdef\r\n0\r\n\r\n",             # chunk longer than announced
    b"3;\x00\r\nabc\r\n0\r\n\r\n",          # control character in a chunk extension
]


@pytest.fixture(scope="module")
def live_idp(tmp_path_factory):
    with provider(tmp_path_factory, "badinput") as idp:
        idp.run_cli("init")
        with running(idp):
            yield idp


def _raw_post(idp, path: str, body: bytes) -> tuple[int, bytes]:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{idp.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", idp.port), timeout=20) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("body", BROKEN_BODIES)
def test_malformed_chunked_body_on_token_is_an_oauth_400(live_idp, body):
    status, payload = _raw_post(live_idp, "/token", body)
    assert status == 400, payload[:300]
    assert json.loads(payload)["error"] == "invalid_request"
    assert "unhandled error" not in live_idp.log_tail(200)
