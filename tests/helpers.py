"""Building blocks for protocol tests: people, clients, PKCE, a signed-in browser."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from idp.accounts import create_person
from idp.clients import register_client

CITIZEN_ID = "11010519491231002X"  # GB 11643-1999's own worked example
CITIZEN_PASSWORD = "Correct-Horse-9"
CITIZEN_PHONE = "13912345678"
REDIRECT = "https://rp.example/cb"


def make_person(id_number=CITIZEN_ID, name="李四", password=CITIZEN_PASSWORD,
                phone=CITIZEN_PHONE):
    return create_person(id_number, name, password, phone)


@dataclass
class RP:
    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT

    @property
    def basic(self):
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def make_client(client_id="rp1", *, public=False, first_party=False, secret=None,
                auth_method=None, sensitive=(), backchannel=None, jwks=None,
                grant_types=None, redirect_uris=(REDIRECT,), post_logout=("https://rp.example/bye",),
                id_token_alg=None, subject_type="public", sector_uri=None,
                userinfo_alg=None, org_roles=None, org_scopes=None, legacy_systems=None) -> RP:
    method = auth_method or ("none" if public else "client_secret_basic")
    if method.startswith("client_secret"):
        secret = secret or secrets.token_urlsafe(24)
    register_client(client_id=client_id, name=f"测试应用 {client_id}", secret=secret,
                    auth_method=method, redirect_uris=list(redirect_uris),
                    grant_types=list(grant_types or []),
                    post_logout_redirect_uris=list(post_logout),
                    backchannel_logout_uri=backchannel, first_party=first_party,
                    sensitive_scopes=list(sensitive), channel="web", jwks=jwks,
                    id_token_alg=id_token_alg, subject_type=subject_type,
                    sector_identifier_uri=sector_uri, userinfo_alg=userinfo_alg,
                    org_roles=org_roles, org_scopes=org_scopes, legacy_systems=legacy_systems)
    return RP(client_id, secret, redirect_uris[0] if redirect_uris else REDIRECT)


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize_url(rp: RP, **params) -> str:
    base = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
            "scope": "openid profile", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8)}
    base.update({k: v for k, v in params.items() if v is not None})
    return "/authorize?" + urlencode(base)


def follow_login(client, resp, username=CITIZEN_ID, password=CITIZEN_PASSWORD, consent="allow"):
    """From an /authorize response, sign in and consent as needed; returns the final
    redirect response to the client (302 with Location at the redirect URI)."""
    for _ in range(6):
        if resp.status_code != 302:
            return resp
        loc = resp.headers["Location"]
        path = urlsplit(loc).path
        if path == "/login":
            page = client.get(loc)
            fields = form_fields(page.get_data(as_text=True))
            resp = client.post("/login", data={**fields, "username": username,
                                               "password": password})
        elif path == "/consent":
            page = client.get(loc)
            fields = form_fields(page.get_data(as_text=True))
            resp = client.post("/consent", data={**fields, "consent": consent})
        elif path == "/authorize":
            resp = client.get(loc)
        else:
            return resp
    return resp


def get_code(client, rp: RP, **params):
    """Run the authorization request through login/consent; return (code, query, verifier)."""
    verifier, challenge = pkce_pair()
    params.setdefault("code_challenge", challenge)
    params.setdefault("code_challenge_method", "S256")
    resp = follow_login(client, client.get(authorize_url(rp, **params)))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    q = query(resp.headers["Location"])
    assert "code" in q, q
    return q["code"], q, verifier


def exchange(client, rp: RP, code: str, verifier: str | None, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    data.update(extra)
    headers = rp.basic if rp.secret and "client_secret" not in data else {}
    if not rp.secret:
        data.setdefault("client_id", rp.client_id)
    return client.post("/token", data=data, headers=headers)


def tokens_for(client, rp: RP, **params) -> dict:
    code, _, verifier = get_code(client, rp, **params)
    resp = exchange(client, rp, code, verifier)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def sms_outbox(app) -> list[dict]:
    """The messages the development SMS gateway wrote (idp.authn.sms_gateways.DevOutbox)."""
    path = app.config.get("SMS_OUTBOX") or os.path.join(app.instance_path, "sms_outbox.log")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def last_sms_code(app, phone: str, purpose: str | None = None) -> str:
    msgs = [m for m in sms_outbox(app) if m["phone"] == phone
            and (purpose is None or m["purpose"] == purpose)]
    assert msgs, f"no SMS to {phone}"
    return msgs[-1]["code"]
