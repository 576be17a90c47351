"""Trusted kiosks (RFC 7523 §2.1) with an independent client: openid-client 5.x and jose
on Node (kiosk_assertion.mjs) make a key pair, the kiosk is registered with its public
key through ``idp client add``, and it exchanges signed chip-and-face assertions at the
token endpoint of ``idp serve``."""

from __future__ import annotations

import json

import psycopg
import pytest

from .node_script import NodeScript
from .rp_result import explain, ok, refused

pytestmark = pytest.mark.node

CITIZEN_ID = "11010519491231002X"
CITIZEN_NAME = "王五"
KIOSK_ID = "e2e-kiosk-reader"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def citizen(live_idp):
    return live_idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", CITIZEN_NAME,
                            "--password", "E2e-Password-2026")


def account(live_idp, person_id: str) -> tuple[str, str | None]:
    """The account's assurance level and how it was verified. The CLI cannot show a
    person, so this reads the provider's database directly."""
    with psycopg.connect(live_idp.env["DATABASE_URL"]) as conn:
        row = conn.execute("SELECT assurance_level, assurance_method FROM person WHERE id = %s",
                           (person_id,)).fetchone()
    assert row is not None, person_id
    return row[0], row[1]


def register_kiosk(live_idp, jwks: dict, path) -> dict:
    path.write_text(json.dumps(jwks), encoding="utf-8")
    return live_idp.run_cli("client", "add", "--client-id", KIOSK_ID, "--name", "自助终端读卡器",
                            "--channel", "kiosk", "--grant-type", JWT_BEARER,
                            "--auth-method", "private_key_jwt", "--jwks", str(path))


def test_chip_and_face_assertion_gives_l4_kiosk_tokens(node, live_idp, citizen, tmp_path):
    assert account(live_idp, citizen["id"])[0] == "L2"
    config = {"issuer": live_idp.issuer, "scope": "openid profile", "id_number": CITIZEN_ID,
              "client": {"client_id": KIOSK_ID, "token_endpoint_auth_method": "private_key_jwt"}}
    with NodeScript(node, "kiosk_assertion.mjs", config, idp=live_idp, timeout=30) as run:
        jwks = run.wait("paused", "register")["jwks"]
        (key,) = jwks["keys"]
        assert key["kty"] == "EC" and key["crv"] == "P-256" and "d" not in key
        registered = register_kiosk(live_idp, jwks, tmp_path / "kiosk-jwks.json")
        assert registered["token_endpoint_auth_method"] == "private_key_jwt"
        assert registered["grant_types"] == [JWT_BEARER]
        run.send()
        r = run.result()
    assert r["completed"] is True, explain(r, "kiosk assertion flow did not complete")
    d = ok(r, "discovery")
    assert d["token_endpoint"] == live_idp.issuer + "/token"
    assert JWT_BEARER in d["grant_types_supported"]

    g = ok(r, "grant")
    assert g["token_type"].lower() == "bearer" and g["access_token_is_jwt"] is True
    assert g["scope"] == "openid profile" and g["has_id_token"] is True
    assert g["has_refresh_token"] is False  # the next person is about to use the kiosk

    c = ok(r, "id_token")["claims"]  # validated by openid-client
    assert c["iss"] == live_idp.issuer and c["aud"] == [KIOSK_ID]
    assert c["acr"] == "L4" and c["amr"] == ["idcard", "face"] and c["channel"] == "kiosk"
    assert c["sub"] == citizen["id"] and CITIZEN_ID not in json.dumps(c)
    assert c["name"] == CITIZEN_NAME and c.get("nonce") is None
    other = r["steps"]["id_token_for_another_client"]
    assert other["outcome"] == "error" and other["error"]["name"] == "RPError", explain(
        r, "an ID token for the kiosk passed validation by another client")
    assert "aud" in other["error"]["message"]
    assert ok(r, "userinfo")["sub"] == c["sub"]

    # The same assertion twice, one for another server, one signed by another device
    # under the kiosk's kid, one whose face match failed: each for its own reason.
    reasons = {"replay": "replay", "wrong_audience": "aud", "other_key": "signature",
               "face_mismatch": "face match"}
    for step, reason in reasons.items():
        s = refused(r, step, "invalid_grant", 400, error_name="OPError")
        desc = s["error"].get("error_description") or ""
        assert reason in desc, explain(r, f"{step}: refused for another reason")
        assert CITIZEN_ID not in desc

    assert account(live_idp, citizen["id"]) == ("L4", "kiosk_chip_face")
