"""The relying party's side of a code flow, over plain HTTP, for tests that play it
themselves: PKCE, the redirect's query, the code exchange and the ID token's signature.
Nothing of the provider's code is imported."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hidden_fields(html: str) -> dict[str, str]:
    """A page's hidden form fields (csrf_token, rid, ...), to post back."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def redeem_code(live, client_id: str, secret: str, code: str, redirect_uri: str,
                verifier: str, algorithms: Sequence[str] = ("ES256",)) -> dict:
    """Exchange ``code`` at /token (client_secret_basic); the ID token's claims, once its
    signature checks out against the provider's published keys."""
    resp = requests.post(live.url("/token"), auth=(client_id, secret), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "code_verifier": verifier})
    assert resp.status_code == 200, resp.text
    published = requests.get(live.url("/jwks"), timeout=5).json()["keys"]
    # This process does not load the provider's SM2 extension to joserfc; ES256 is the
    # provider's default signing algorithm.
    keys = KeySet.import_key_set({"keys": [k for k in published if k.get("crv") != "SM2"]})
    return jwt.decode(resp.json()["id_token"], keys, algorithms=list(algorithms)).claims
