"""Fetching client-named URLs (jwks_uri): no loopback, private, link-local or reserved
destination, checked on the resolved address the connection then uses."""

from __future__ import annotations

import pytest

from idp.oidc.safe_fetch import FetchError, check_url, fetch, resolve


@pytest.mark.parametrize("uri", [
    "https://127.0.0.1/jwks", "https://10.0.0.8/jwks", "https://192.168.1.1/jwks",
    "https://172.16.0.1/jwks", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/jwks", "https://[fd00::1]/jwks", "https://[::ffff:127.0.0.1]/jwks",
    "https://0.0.0.0/jwks", "http://rp.example/jwks", "ftp://rp.example/jwks",
    "https://user@rp.example/jwks", "https://rp.example/jwks#k", "https:///jwks",
    "https://rp.example:99999/jwks",
])
def test_urls_refused_without_network(uri):
    with pytest.raises(FetchError):
        check_url(uri, allow_private=False)


def test_public_https_url_passes_the_static_check():
    check_url("https://rp.example.gov.cn/.well-known/jwks.json", allow_private=False)


def test_names_resolving_to_loopback_are_refused():
    # "localhost" resolves locally (no DNS needed) to a loopback address.
    with pytest.raises(FetchError, match="loopback"):
        resolve("localhost", 443, allow_private=False)
    assert resolve("localhost", 443, allow_private=True)


def test_fetch_refuses_before_connecting():
    with pytest.raises(FetchError):
        fetch("https://localhost:1/jwks", timeout=1, max_bytes=10, allow_private=False)
