"""Regression tests for channel defects (issue 10): limits that a burst or a fresh cookie
got past, a read-back SMS code another agent could replace, client assertions that never
expire, kiosk face scores that were not numbers, and registrations no request could use."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.authn import sms
from idp.channels import ciba
from idp.clients import CIBA, DEVICE_CODE, JWT_BEARER, ClientError, register_client
from idp.identity import normalize_phone
from idp.store import store
from tests.helpers import CITIZEN_ID, CITIZEN_PHONE, last_sms_code, make_client
from tests.integration import test_ciba as hall
from tests.integration import test_device_grant as screen
from tests.integration import test_kiosk_assertion as card
from tests.integration.test_cli import run  # noqa: F401 - the CLI fixture
from tests.integration.test_qr_login import Website

# -- (3) CIBA unknown-hint limit under a burst ------------------------------------------


def test_unknown_hint_limit_holds_when_lookups_overlap(ctx, client, person, monkeypatch):
    """Each lookup below starts while the ones before it are still looking (the next
    request is made from inside the previous one's lookup), which is what a burst of
    parallel requests does: with the count read first and raised after the answer, all
    six were answered unknown_user_id for a limit of three."""
    monkeypatch.setitem(ctx.config, "CIBA_UNKNOWN_HINT_LIMIT", 3)
    rp = hall.ciba_client()
    answers, real_lookup = [], ciba._find_person

    def overlapping_lookup(hint):
        if len(answers) + depth[0] < 6:
            depth[0] += 1
            answers.append(hall.bc(ctx.test_client(), rp,
                                   login_hint=f"1360000{depth[0]:04d}"))
        return real_lookup(hint)

    depth = [0]
    monkeypatch.setattr(ciba, "_find_person", overlapping_lookup)
    answers.append(hall.bc(client, rp, login_hint="13600009999"))
    errors = [hall.err(r) for r in answers]
    assert errors.count("unknown_user_id") == 3, errors
    assert "temporarily_unavailable" in errors
    monkeypatch.setattr(ciba, "_find_person", real_lookup)
    # Past the limit nobody is looked up, a registered person neither.
    late = hall.bc(client, rp, login_hint=CITIZEN_ID)
    assert late.status_code == 429 and int(late.headers["Retry-After"]) > 0


def test_lookups_that_find_someone_do_not_use_up_the_budget(ctx, client, person, monkeypatch):
    monkeypatch.setitem(ctx.config, "CIBA_UNKNOWN_HINT_LIMIT", 3)
    monkeypatch.setitem(ctx.config, "CIBA_MAX_PENDING_PER_PERSON", 10)
    rp = hall.ciba_client()
    for _ in range(5):
        assert hall.bc(client, rp).status_code == 200
    codes = [hall.bc(client, rp, login_hint=f"1360000000{n}").status_code for n in range(4)]
    assert codes == [400, 400, 400, 429]


# -- (9) the read-back SMS code belongs to its request ---------------------------------


def _let_the_send_interval_pass() -> None:
    # One code a minute per phone (SMS_PHONE_INTERVAL); the second agent calls later.
    store().delete(f"sms:gap:{sms._phone_key(normalize_phone(CITIZEN_PHONE))}")


def test_two_agents_read_back_codes_for_the_same_citizen(ctx, client, person):
    """A second agent's send replaced the first agent's code (one code per phone), and
    the second agent's code approved the first agent's request."""
    first = hall.ciba_client("hotline1", channel="hotline")
    second = hall.ciba_client("hotline2", channel="hotline")
    aid1 = hall.start(client, first, acting_party="agent-1")
    aid2 = hall.start(client, second, acting_party="agent-2")
    assert client.post(f"/bc-authorize/{aid1}/sms-code", headers=first.basic).status_code == 200
    code1 = last_sms_code(ctx, CITIZEN_PHONE, "ciba")
    _let_the_send_interval_pass()
    assert client.post(f"/bc-authorize/{aid2}/sms-code", headers=second.basic).status_code == 200
    code2 = last_sms_code(ctx, CITIZEN_PHONE, "ciba")
    if code2 != code1:  # one in a million they are the same
        cross = client.post(f"/bc-authorize/{aid1}/sms-code", headers=first.basic,
                            data={"code": code2})
        assert cross.status_code == 400 and hall.err(cross) == "invalid_grant"
    for rp, aid, code in ((first, aid1, code1), (second, aid2, code2)):
        ok = client.post(f"/bc-authorize/{aid}/sms-code", headers=rp.basic, data={"code": code})
        assert ok.status_code == 200 and ok.get_json()["approved"] is True, ok.get_json()
        act = hall.decode(hall.poll(client, rp, aid).get_json()["id_token"])["act"]
        assert act["client_id"] == rp.client_id


# -- (6) per-address limits on state anonymous requests create --------------------------


def test_device_authorization_is_limited_per_address(ctx, client, monkeypatch):
    monkeypatch.setitem(ctx.config, "DEVICE_AUTHZ_PER_MINUTE", 3)
    screens = [screen.device_client(f"tv{n}") for n in range(2)]
    codes = [screen.start(client, screens[n % 2]).status_code for n in range(3)]
    assert codes == [200, 200, 200]
    resp = screen.start(client, screens[0])
    assert resp.status_code == 429
    assert resp.get_json()["error"] == "slow_down" and resp.get_json()["error_description"]
    assert resp.headers["Retry-After"] == "60" and resp.headers["Cache-Control"] == "no-store"


def test_qr_tickets_are_limited_per_address_not_only_per_cookie(ctx, person, monkeypatch):
    """A fresh browser (cookie) for each ticket was unlimited."""
    monkeypatch.setitem(ctx.config, "QR_TICKETS_PER_ADDRESS_PER_MINUTE", 3)
    rp = make_client()
    codes = [Website(ctx, rp).ticket().status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


# -- (9) client assertions that never expire --------------------------------------------


def _pkj_client():
    key = ECKey.generate_key("P-256", private=True, parameters={"kid": "pkj-1"})
    pub = {**key.as_dict(private=False), "kid": "pkj-1"}
    make_client("pkj", auth_method="private_key_jwt", jwks={"keys": [pub]})
    return key


def _introspect(client, key, **claims):
    body = {"iss": "pkj", "sub": "pkj", "aud": "http://localhost/token",
            "jti": secrets.token_urlsafe(12), **claims}
    body = {k: v for k, v in body.items() if v is not None}
    assertion = jwt.encode({"alg": "ES256", "kid": key.kid}, body, key)
    return client.post("/introspect", data={
        "token": "not-a-token",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})


def test_client_assertions_cannot_live_for_decades(ctx, client):
    key = _pkj_client()
    now = int(time.time())
    decades = 20 * 365 * 24 * 3600
    assert _introspect(client, key, iat=now, exp=now + 60).status_code == 200
    assert _introspect(client, key, exp=now + 60).status_code == 200  # iat is optional
    for claims in ({"iat": now, "exp": now + decades}, {"exp": now + decades},
                   {"iat": now - decades, "exp": now + 60}, {"iat": True, "exp": now + 60}):
        resp = _introspect(client, key, **claims)
        assert resp.status_code in (400, 401), claims
        assert resp.get_json()["error"] == "invalid_client"


def test_kiosk_assertion_exp_far_ahead_is_refused(ctx, client, person):
    key = card.kiosk()
    now = int(time.time())
    card.refused(card.exchange(client, card.assertion(key, exp=now + 20 * 365 * 24 * 3600)))


# -- (9) kiosk face-match score ----------------------------------------------------------


@pytest.mark.parametrize("score", [True, "missing", "0.95", 1.5, -0.1, float("nan")],
                         ids=["true", "missing", "string", "above-one", "negative", "nan"])
def test_kiosk_face_score_must_be_a_number_from_0_to_1(ctx, client, person, score):
    key = card.kiosk()
    check = {"chip": True, "face_match": True}
    if score != "missing":
        check["score"] = score
    card.refused(card.exchange(client, card.assertion(key, check=check)))
    assert card.exchange(client, card.assertion(key)).status_code == 200  # 0.93 is fine


# -- which channel may use which grant, at registration ----------------------------------


@pytest.mark.parametrize("channel, grant, redirect", [
    ("web", CIBA, []), ("web", JWT_BEARER, []), ("app", DEVICE_CODE, ["cn.gov.app:/cb"]),
    ("hotline", DEVICE_CODE, []), ("kiosk", CIBA, []),
])
def test_registration_refuses_a_grant_the_channel_cannot_use(ctx, channel, grant, redirect):
    with pytest.raises(ClientError, match=f"not {channel}"):
        register_client(
            client_id="c1", name="c1", secret="s" * 32, auth_method="client_secret_basic",
            redirect_uris=redirect, grant_types=[grant], post_logout_redirect_uris=[],
            backchannel_logout_uri=None, first_party=False, sensitive_scopes=[],
            channel=channel, jwks=None, id_token_alg=None)


def test_client_add_names_the_forbidden_combination(run):  # noqa: F811 - fixture
    res = run("client", "add", "--client-id", "site", "--redirect-uri", "https://a.example/cb",
              "--grant-type", "authorization_code", "--grant-type", CIBA)
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert "grant type ciba is for hall or hotline clients, not web" in res.stderr
    ok = run("client", "add", "--client-id", "line", "--channel", "hotline", "--grant-type",
             "ciba", "--json")  # the short name of the grant will do
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["grant_types"] == [CIBA]
