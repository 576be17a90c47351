"""Resource indicators (RFC 8707): audience-restricted access tokens, and a resource
server's introspection sees only the tokens meant for it."""

from __future__ import annotations

import base64

import pytest
from joserfc import jwt

from idp.clients import register_client
from tests.helpers import exchange, get_code, make_client

TAX_API = "https://api.tax.example.gov.cn/"
SOCIAL_API = "https://api.si.example.gov.cn/"


@pytest.fixture
def servers(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "RESOURCE_SERVERS",
                        [f"tax-rs={TAX_API}", f"si-rs={SOCIAL_API}"])
    out = {}
    for cid in ("tax-rs", "si-rs"):
        secret = f"{cid}-secret-0123456789abcdef"
        register_client(client_id=cid, name=cid, secret=secret, auth_method="client_secret_basic",
                        redirect_uris=[], grant_types=["client_credentials"])
        out[cid] = {"Authorization": "Basic " + base64.b64encode(
            f"{cid}:{secret}".encode()).decode()}
    return out


def _claims(token):
    from idp.oidc.tokens import keyring

    return jwt.decode(token, keyring().public_keys(), algorithms=keyring().algorithms()).claims


def test_access_token_for_the_resource_asked_for(client, person, servers):
    rp = make_client("rp-ri", grant_types=["authorization_code", "refresh_token"])
    code, _, verifier = get_code(client, rp, resource=TAX_API)
    tok = exchange(client, rp, code, verifier).get_json()
    assert _claims(tok["access_token"])["aud"] == TAX_API
    # Meant for the tax API: not for this provider's userinfo...
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert info.status_code == 401
    # ...and introspection shows it to the tax API's server only.
    seen = client.post("/introspect", data={"token": tok["access_token"]},
                       headers=servers["tax-rs"]).get_json()
    assert seen["active"] is True and seen["aud"] == TAX_API
    hidden = client.post("/introspect", data={"token": tok["access_token"]},
                         headers=servers["si-rs"]).get_json()
    assert hidden == {"active": False}
    # The refresh keeps the limit and may not widen it.
    wider = client.post("/token", data={"grant_type": "refresh_token",
                                        "refresh_token": tok["refresh_token"],
                                        "resource": SOCIAL_API}, headers=rp.basic)
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_target"
    again = client.post("/token", data={"grant_type": "refresh_token",
                                        "refresh_token": tok["refresh_token"]},
                        headers=rp.basic).get_json()
    assert _claims(again["access_token"])["aud"] == TAX_API


def test_unknown_resource_is_invalid_target(client, person, servers):
    from tests.helpers import authorize_url, query

    rp = make_client("rp-ri")
    resp = client.get(authorize_url(rp, resource="https://intranet.example/"))
    assert query(resp.headers["Location"])["error"] == "invalid_target"
    code, _, verifier = get_code(client, rp, resource=TAX_API)
    other = exchange(client, rp, code, verifier, resource=SOCIAL_API)
    assert other.status_code == 400 and other.get_json()["error"] == "invalid_target"


def test_without_resource_nothing_changes(client, person, servers):
    rp = make_client("rp-plain")
    code, _, verifier = get_code(client, rp)
    tok = exchange(client, rp, code, verifier).get_json()
    assert _claims(tok["access_token"])["aud"] == "http://localhost"
    seen = client.post("/introspect", data={"token": tok["access_token"]},
                       headers=servers["si-rs"]).get_json()
    assert seen["active"] is True


def test_client_credentials_with_a_resource(client, servers):
    secret = "m2m-secret-0123456789abcdef"
    register_client(client_id="m2m", name="m2m", secret=secret,
                    auth_method="client_secret_basic", redirect_uris=[],
                    grant_types=["client_credentials"])
    basic = {"Authorization": "Basic " + base64.b64encode(f"m2m:{secret}".encode()).decode()}
    tok = client.post("/token", data={"grant_type": "client_credentials",
                                      "resource": [TAX_API, SOCIAL_API]},
                      headers=basic).get_json()
    assert sorted(_claims(tok["access_token"])["aud"]) == sorted([TAX_API, SOCIAL_API])


def test_resource_servers_setting_is_validated():
    from idp.settings import ConfigError, load, validate

    cfg = load(".", {"RESOURCE_SERVERS": ["no-equals-sign", "rs=http://plain.example/"],
                     "FAPI_AUTHORIZATION_CODE_TTL": 600})
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    text = str(err.value)
    assert "IDP_RESOURCE_SERVERS entry 'no-equals-sign'" in text
    assert "rs=http://plain.example/" in text and "FAPI_AUTHORIZATION_CODE_TTL" in text
