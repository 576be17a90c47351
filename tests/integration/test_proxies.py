"""Per-address limits and the audit log see the client's address behind a load
balancer, and only the configured number of hops may claim it."""

from __future__ import annotations

import pytest
from flask import request


def _app(tmp_path, proxies: int):
    from idp import create_app

    app = create_app({"ISSUER": "http://localhost", "TRUSTED_PROXIES": proxies},
                     instance_path=str(tmp_path))
    app.add_url_rule("/_whoami", "whoami",
                     lambda: {"ip": request.remote_addr, "scheme": request.scheme})
    return app


@pytest.mark.parametrize("proxies, ip, scheme", [
    (0, "10.0.0.5", "http"),           # nobody trusted: the headers are the client's lie
    (1, "198.51.100.7", "https"),      # one balancer: its view of the client
    (2, "203.0.113.9", "https"),       # two hops: the address the outer one saw
])
def test_forwarded_headers_count_only_trusted_hops(tmp_path, proxies, ip, scheme):
    resp = _app(tmp_path, proxies).test_client().get(
        "/_whoami", environ_base={"REMOTE_ADDR": "10.0.0.5"},
        headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7",
                 "X-Forwarded-Proto": "https, https"})
    assert resp.get_json() == {"ip": ip, "scheme": scheme}
