"""The device authorization grant (RFC 8628) with an independent client: openid-client
5.x on Node (device_flow.mjs) polls ``idp serve`` while a person, signed in over plain
HTTP, approves or denies the user code on /device."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests

from .conftest import provider, running
from .node_script import NodeScript
from .oauth import hidden_fields
from .rp_result import explain, ok, refused

pytestmark = pytest.mark.node

CITIZEN_ID = "11010519491231002X"
CITIZEN_NAME = "王五"
CITIZEN_PASSWORD = "E2e-Password-2026"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture(scope="module")
def live_idp(tmp_path_factory):
    """As conftest's, but devices are told to poll every second (RFC 8628's 5 s default
    is covered by the integration tests) so openid-client does not idle here."""
    with provider(tmp_path_factory, "live-idp-device",
                  env={"IDP_DEVICE_POLL_INTERVAL": "1"}) as idp:
        idp.run_cli("init")
        with running(idp):
            yield idp


@pytest.fixture(scope="module")
def citizen(live_idp):
    return live_idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", CITIZEN_NAME,
                            "--password", CITIZEN_PASSWORD)


@pytest.fixture(scope="module")
def device_client(live_idp):
    out = live_idp.run_cli("client", "add", "--client-id", "e2e-kiosk-tv", "--name", "大厅自助屏",
                           "--public", "--grant-type", DEVICE, "--channel", "kiosk")
    assert out["token_endpoint_auth_method"] == "none" and out["grant_types"] == [DEVICE]
    return out


def answer_on_phone(live_idp, device: dict, decision: str) -> str:
    """A person opens verification_uri_complete, signs in, checks the code, decides."""
    s = requests.Session()
    url = device["verification_uri_complete"]
    assert url.startswith(live_idp.issuer + "/device?")
    r = s.get(url, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/login"
    login = s.get(live_idp.url(r.headers["Location"]), timeout=10)
    r = s.post(live_idp.url("/login"), data={**hidden_fields(login.text), "username": CITIZEN_ID,
                                             "password": CITIZEN_PASSWORD},
               allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:500]
    confirm = s.get(live_idp.url(r.headers["Location"]), timeout=10)
    assert device["user_code"] in confirm.text and "大厅自助屏" in confirm.text
    r = s.post(live_idp.url("/device"), data={**hidden_fields(confirm.text), "decision": decision},
               timeout=10)
    assert r.status_code == 200, r.text[:500]
    return r.text


def run_device_client(node, live_idp, client: dict, decision: str) -> tuple[dict, str]:
    config = {"issuer": live_idp.issuer, "scope": "openid profile", "client": client}
    with NodeScript(node, "device_flow.mjs", config, idp=live_idp) as run:
        first = run.message()
        if not first or "device" not in first:
            pytest.fail(f"device_flow.mjs printed no codes: {first!r}\n{run.stderr()}")
        page = answer_on_phone(live_idp, first["device"], decision)
        result = run.result()
    result["device"] = first["device"]
    return result, page


def test_device_flow_approved_on_phone_gives_kiosk_tokens(node, live_idp, citizen, device_client):
    r, page = run_device_client(node, live_idp, {"client_id": "e2e-kiosk-tv",
                                                 "token_endpoint_auth_method": "none"}, "allow")
    assert r["completed"] is True, explain(r, "device flow did not complete")
    d = r["steps"]["discovery"]
    assert d["device_authorization_endpoint"] == live_idp.issuer + "/device_authorization"
    assert DEVICE in d["grant_types_supported"]
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}",
                        r["device"]["user_code"])
    refused(r, "early_poll", "authorization_pending", 400, error_name="OPError")
    assert "已确认登录" in page

    p = ok(r, "poll")  # openid-client validated the ID token
    c = p["id_token_claims"]
    assert c["iss"] == live_idp.issuer and c["aud"] == ["e2e-kiosk-tv"]
    assert c["channel"] == "kiosk" and c["acr"] == "L2" and c["amr"] == ["pwd"]
    assert c["name"] == CITIZEN_NAME and CITIZEN_ID not in c["sub"] and c.get("sid") is None
    assert p["token_type"].lower() == "bearer" and p["access_token_is_jwt"] is True
    assert p["scope"] == "openid profile" and p["has_refresh_token"] is False
    assert ok(r, "userinfo")["sub"] == c["sub"]
    refused(r, "replay", "invalid_grant", 400, error_name="OPError")


def test_device_flow_denied_on_phone_is_access_denied(node, live_idp, citizen, device_client):
    r, page = run_device_client(node, live_idp, {"client_id": "e2e-kiosk-tv",
                                                 "token_endpoint_auth_method": "none"}, "deny")
    assert r["completed"] is True, explain(r, "device flow did not complete")
    assert "已拒绝登录" in page
    refused(r, "poll", "access_denied", 400, error_name="OPError")
