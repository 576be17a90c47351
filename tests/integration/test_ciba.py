"""Hall counters and hotlines: CIBA poll mode (OpenID CIBA Core 1.0) with the clerk in
``act``, the citizen approving on their app (``approvals.decide``, as the app API does)
or reading an SMS code back to a hotline agent."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from werkzeug.datastructures import MultiDict

from idp import audit
from idp.audit import AuditEvent
from idp.channels import approvals
from idp.clients import CIBA, ClientError, forget_client, register_client
from idp.extensions import db
from idp.models import Client, Person
from idp.oidc.tokens import keyring
from tests.helpers import CITIZEN_ID, CITIZEN_PHONE, RP, last_sms_code, make_client, make_person

BINDING = "窗口 3 核对码 4721"
CLERK = "clerk-0042"


def ciba_client(client_id="hall1", channel="hall", grants=(CIBA,), subject_type="public",
                in_person_checks=False):
    secret = f"secret-{client_id}-0123456789abcdef"
    register_client(client_id=client_id, name=f"测试窗口 {client_id}", secret=secret,
                    auth_method="client_secret_basic", redirect_uris=[],
                    grant_types=list(grants), post_logout_redirect_uris=[],
                    backchannel_logout_uri=None, first_party=True, sensitive_scopes=[],
                    channel=channel, jwks=None, id_token_alg=None, subject_type=subject_type,
                    in_person_checks=in_person_checks)
    return RP(client_id, secret)


def bc(client, rp: RP, **params):
    data = {"scope": "openid profile", "login_hint": CITIZEN_ID, "binding_message": BINDING,
            "acting_party": CLERK}
    data.update(params)
    data = {k: v for k, v in data.items() if v is not None}
    return client.post("/bc-authorize", data=data, headers=rp.basic)


def start(client, rp: RP, **params) -> str:
    resp = bc(client, rp, **params)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["auth_req_id"]


def poll(client, rp: RP, aid: str | None):
    data = {"grant_type": CIBA}
    if aid is not None:
        data["auth_req_id"] = aid
    return client.post("/token", data=data, headers=rp.basic)


def approve(aid: str, amr=("pwd", "sms"), acr="L3", ok=True):
    a = approvals.get(aid)
    return approvals.decide(aid, a.person_id, ok, amr=list(amr), acr=acr)


def decode(token: str) -> dict:
    return jwt.decode(token, keyring().public_keys(), algorithms=keyring().algorithms()).claims


def err(resp) -> str:
    return resp.get_json()["error"]


def events(name: str) -> list[AuditEvent]:
    audit.flush()
    db.session.expire_all()
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)
                              .order_by(AuditEvent.seq)).all()


def set_level(person: Person, level: str) -> None:
    person.assurance_level = level
    db.session.commit()


def test_discovery_advertises_poll_and_ping_mode_ciba(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["backchannel_authentication_endpoint"] == "http://localhost/bc-authorize"
    assert doc["backchannel_token_delivery_modes_supported"] == ["poll", "ping"]
    assert doc["backchannel_user_code_parameter_supported"] is False
    assert CIBA in doc["grant_types_supported"]
    assert "authorization_code" in doc["grant_types_supported"]


def test_hall_request_approved_on_the_app_gives_tokens_naming_the_clerk(client, person):
    set_level(person, "L3")
    rp = ciba_client()
    # The clerk types the number as it is written on the card, full-width and grouped.
    resp = bc(client, rp, login_hint="１１０１０５ 19491231 002x", acr_values="L3")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["expires_in"] == 300 and body["interval"] == 5 and len(body["auth_req_id"]) >= 32
    assert resp.headers["Cache-Control"] == "no-store"
    aid = body["auth_req_id"]

    # It waits on the citizen's app, with what the clerk read out.
    waiting = approvals.pending_for(person.id)
    assert [a.id for a in waiting] == [aid]
    shown = waiting[0].public()
    assert shown["binding_message"] == BINDING and shown["client_name"] == "测试窗口 hall1"
    assert waiting[0].extra["act"] == {"sub": CLERK, "client_id": "hall1"}

    pending = poll(client, rp, aid)
    assert pending.status_code == 400 and err(pending) == "authorization_pending"

    assert approve(aid, amr=["pwd", "sms"], acr="L3") is not None
    resp = poll(client, rp, aid)
    assert resp.status_code == 200, resp.get_json()
    tok = resp.get_json()
    assert "refresh_token" not in tok  # no offline_access asked
    idt = decode(tok["id_token"])
    assert idt["iss"] == "http://localhost" and idt["aud"] == ["hall1"]
    assert idt["sub"] == person.id and idt["name"] == "李四"
    assert idt["acr"] == "L3" and idt["amr"] == ["pwd", "sms"]
    assert idt["channel"] == "hall"
    assert idt["act"] == {"sub": CLERK, "client_id": "hall1"}
    assert "nonce" not in idt and "sid" not in idt
    at = decode(tok["access_token"])
    assert at["sub"] == person.id and at["client_id"] == "hall1"
    assert at["act"] == idt["act"] and at["channel"] == "hall" and at["acr"] == "L3"
    assert at["amr"] == ["pwd", "sms"]
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + tok["access_token"]})
    assert info.status_code == 200 and info.get_json()["sub"] == person.id

    # Single use: the same auth_req_id gives nothing a second time.
    again = poll(client, rp, aid)
    assert again.status_code == 400 and err(again) == "invalid_grant"

    requested = events("ciba.requested")
    assert len(requested) == 1
    assert requested[0].actor == CLERK and requested[0].subject == person.id
    assert requested[0].client_id == "hall1"
    assert requested[0].details["act"] == {"sub": CLERK, "client_id": "hall1"}
    decided = events("ciba.decided")
    assert len(decided) == 1 and decided[0].details["state"] == "approved"
    assert decided[0].subject == person.id and decided[0].details["act"]["sub"] == CLERK
    issued = [e for e in events("token.issued") if e.details.get("grant_type") == CIBA]
    assert len(issued) == 1
    assert issued[0].actor == CLERK and issued[0].subject == person.id
    assert issued[0].details["act"] == {"sub": CLERK, "client_id": "hall1"}
    assert issued[0].details["channel"] == "hall"
    dump = json.dumps([e.details for e in events("ciba.requested")], ensure_ascii=False)
    assert CITIZEN_ID not in dump


def test_acr_is_what_the_app_session_proves_and_pairwise_sub(client, person):
    set_level(person, "L3")
    rp = ciba_client("hall-pw", subject_type="pairwise")
    aid = start(client, rp, login_hint="+86 139-1234-5678")  # by phone
    # An app that claims L4 after a password alone gets what a password proves.
    approve(aid, amr=["pwd"], acr="L4")
    tok = poll(client, rp, aid).get_json()
    idt = decode(tok["id_token"])
    assert idt["acr"] == "L2" and idt["amr"] == ["pwd"]
    assert idt["sub"] != person.id and len(idt["sub"]) >= 16  # pairwise, not the internal id
    assert decode(tok["access_token"])["acr"] == "L2"


def test_requested_level_not_reached_is_access_denied(client, person):
    set_level(person, "L3")
    rp = ciba_client()
    aid = start(client, rp, acr_values="L3")
    approve(aid, amr=["pwd"], acr="L2")
    for _ in range(2):  # stays refused; the weak approval is never turned into tokens
        resp = poll(client, rp, aid)
        assert resp.status_code == 400 and err(resp) == "access_denied"


def test_denied_on_the_app(client, person):
    rp = ciba_client()
    aid = start(client, rp)
    approve(aid, ok=False)
    for _ in range(2):  # stays denied; never tokens
        resp = poll(client, rp, aid)
        assert resp.status_code == 400 and err(resp) == "access_denied"
    decided = events("ciba.decided")
    assert len(decided) == 1 and decided[0].details["state"] == "denied"


def test_expiry(client, person):
    rp = ciba_client()
    capped = bc(client, rp, requested_expiry="99999").get_json()
    assert capped["expires_in"] == 600  # CIBA_MAX_EXPIRES_IN
    aid = start(client, rp, requested_expiry="120")
    assert approvals.get(aid).expires - time.time() == pytest.approx(120, abs=5)
    a = approvals.get(aid)
    a.expires = time.time() - 1  # the clock has run out
    approvals._save(a)
    resp = poll(client, rp, aid)
    assert resp.status_code == 400 and err(resp) == "expired_token"
    assert approve(aid) is None  # too late to approve on the app as well


def test_polling_faster_than_the_interval_is_slow_down(client, person):
    rp = ciba_client()
    aid = start(client, rp)
    assert err(poll(client, rp, aid)) == "authorization_pending"
    fast = poll(client, rp, aid)
    assert fast.status_code == 400 and err(fast) == "slow_down"
    approve(aid)
    # Once approved the tokens come at once: slow_down is a variant of "pending".
    assert poll(client, rp, aid).status_code == 200


def test_auth_req_id_of_another_client_or_unknown_is_invalid_grant(client, person):
    rp = ciba_client()
    other = ciba_client("hall2")
    aid = start(client, rp)
    approve(aid)
    stolen = poll(client, other, aid)
    assert stolen.status_code == 400 and err(stolen) == "invalid_grant"
    assert err(poll(client, rp, "no-such-request")) == "invalid_grant"
    assert err(poll(client, rp, None)) == "invalid_request"
    # The rightful client still gets its tokens: the attempt consumed nothing.
    assert poll(client, rp, aid).status_code == 200


def test_public_and_unregistered_clients_are_refused(client, person):
    public = make_client("app1", public=True)
    resp = client.post("/bc-authorize", data={"client_id": public.client_id, "scope": "openid",
                                              "login_hint": CITIZEN_ID, "binding_message": "x",
                                              "acting_party": CLERK})
    assert resp.status_code == 400 and err(resp) == "unauthorized_client"
    tok = client.post("/token", data={"grant_type": CIBA, "auth_req_id": "x",
                                      "client_id": public.client_id})
    assert err(tok) == "invalid_client"

    web = make_client("web1")  # confidential, but a website: no CIBA grant
    assert err(bc(client, web)) == "unauthorized_client"
    assert err(poll(client, web, "x")) == "unauthorized_client"
    # CIBA grant, but not a hall or hotline: registration refuses that shape, so the row
    # is edited into it behind the registration's back (the request is refused anyway).
    kiosk = ciba_client("web-ciba", channel="hall")
    db.session.execute(db.update(Client).where(Client.client_id == "web-ciba")
                       .values(channel="web"))
    db.session.commit()
    forget_client("web-ciba")
    assert err(bc(client, kiosk)) == "unauthorized_client"

    wrong = RP("hall1", "not-the-secret")
    ciba_client()
    resp = bc(client, wrong)
    assert resp.status_code == 401 and err(resp) == "invalid_client"
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert events("ciba.requested") == []


def test_request_errors(client, person):
    rp = ciba_client()
    other = make_person("110101199003074477", "赵六", phone="13700000001")
    other.status = "locked"
    db.session.commit()
    cases = [
        ({"scope": None}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"scope": "openid wallet"}, "invalid_scope"),
        ({"login_hint": None}, "invalid_request"),
        ({"id_token_hint": "eyJhbGciOi"}, "invalid_request"),  # two hints
        ({"login_hint": None, "login_hint_token": "abc"}, "invalid_request"),
        ({"login_hint": "110101199003070000"}, "unknown_user_id"),  # bad check digit
        ({"login_hint": "110105194912310038"}, "unknown_user_id"),  # valid, nobody
        ({"login_hint": "13600000000"}, "unknown_user_id"),
        ({"login_hint": "somebody"}, "unknown_user_id"),
        ({"binding_message": None}, "invalid_binding_message"),
        ({"binding_message": "   "}, "invalid_binding_message"),
        ({"binding_message": "字" * 65}, "invalid_binding_message"),
        ({"binding_message": "line\nbreak"}, "invalid_binding_message"),
        ({"acting_party": None}, "invalid_request"),
        ({"acting_party": "clerk 42"}, "invalid_request"),
        ({"requested_expiry": "0"}, "invalid_request"),
        ({"requested_expiry": "ten"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request"),
    ]
    for params, expected in cases:
        resp = bc(client, rp, **params)
        assert resp.status_code == 400 and err(resp) == expected, (params, resp.get_json())
        assert "error_description" in resp.get_json()
    dup = client.post("/bc-authorize", headers=rp.basic, data=MultiDict([
        ("scope", "openid"), ("scope", "openid profile"), ("login_hint", CITIZEN_ID),
        ("binding_message", BINDING), ("acting_party", CLERK)]))
    assert dup.status_code == 400 and err(dup) == "invalid_request"
    locked = bc(client, rp, login_hint="13700000001")
    assert locked.status_code == 403 and err(locked) == "access_denied"
    assert bc(client, rp, binding_message="字" * 64).status_code == 200
    assert len(events("ciba.requested")) == 1  # only the valid one
    refusals = events("ciba.refused")
    assert [e.details["error"] for e in refusals].count("unknown_user_id") == 4
    assert [e.details["error"] for e in refusals].count("access_denied") == 1
    assert all(e.client_id == "hall1" for e in refusals)
    assert client.get("/bc-authorize").status_code == 405


def test_looking_up_unknown_people_is_rate_limited_per_client(ctx, client, person,
                                                               monkeypatch):
    """unknown_user_id is what CIBA §13 says, so the answer tells a client whether an ID
    number has an account; a client guessing numbers is stopped after a few misses, even
    for numbers that do exist, and the refusal is audited."""
    monkeypatch.setitem(ctx.config, "CIBA_UNKNOWN_HINT_LIMIT", 3)
    rp = ciba_client()
    other = ciba_client("hall2")
    for n in range(3):
        resp = bc(client, rp, login_hint=f"1360000000{n}")
        assert resp.status_code == 400 and err(resp) == "unknown_user_id"
    for hint in ("13600000009", CITIZEN_ID):
        resp = bc(client, rp, login_hint=hint)
        assert resp.status_code == 429 and err(resp) == "temporarily_unavailable"
        assert int(resp.headers["Retry-After"]) > 0
    assert not events("ciba.requested")
    assert [e.details["error"] for e in events("ciba.refused")].count("rate_limited") == 2
    # Another client's budget is its own.
    assert bc(client, other).status_code == 200


def test_offline_access_refresh_keeps_clerk_and_channel(client, person):
    rp = ciba_client("hall-rt", grants=(CIBA, "refresh_token"))
    aid = start(client, rp, scope="openid offline_access")
    approve(aid)
    tok = poll(client, rp, aid).get_json()
    assert tok.get("refresh_token")
    ref = client.post("/token", headers=rp.basic, data={
        "grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
    assert ref.status_code == 200, ref.get_json()
    idt = decode(ref.get_json()["id_token"])
    assert idt["act"] == {"sub": CLERK, "client_id": "hall-rt"} and idt["channel"] == "hall"


def test_hotline_sms_read_back(ctx, client, person):
    set_level(person, "L3")
    rp = ciba_client("hotline1", channel="hotline")
    aid = start(client, rp, acting_party="agent-7")
    url = f"/bc-authorize/{aid}/sms-code"

    sent = client.post(url, headers=rp.basic)
    assert sent.status_code == 200, sent.get_json()
    assert sent.get_json()["sent"] is True
    assert sent.get_json()["phone"] != CITIZEN_PHONE and sent.get_json()["phone"].endswith("5678")
    code = last_sms_code(ctx, CITIZEN_PHONE, "ciba")

    wrong = client.post(url, headers=rp.basic,
                        data={"code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 400 and err(wrong) == "invalid_grant"
    assert wrong.get_json()["tries_left"] == 4
    assert err(poll(client, rp, aid)) == "authorization_pending"  # a wrong code approves nothing

    right = client.post(url, headers=rp.basic, data={"code": code})
    assert right.status_code == 200 and right.get_json() == {"approved": True, "acr": "L2"}
    replay = client.post(url, headers=rp.basic, data={"code": code})
    assert err(replay) == "invalid_grant"

    tok = poll(client, rp, aid).get_json()
    idt = decode(tok["id_token"])
    assert idt["acr"] == "L2" and idt["amr"] == ["sms"]  # one factor, though the account is L3
    assert idt["channel"] == "hotline"
    assert idt["act"] == {"sub": "agent-7", "client_id": "hotline1"}
    assert decode(tok["access_token"])["amr"] == ["sms"]
    decided = events("ciba.decided")
    assert len(decided) == 1 and decided[0].details["via"] == "sms"
    assert decided[0].details["acr"] == "L2"
    assert [e.actor for e in events("ciba.sms_sent")] == ["agent-7"]
    assert len(events("ciba.sms_failed")) == 1


def test_sms_read_back_refusals(ctx, client, person):
    hotline = ciba_client("hotline1", channel="hotline")
    hall = ciba_client("hall1")
    other = ciba_client("hotline2", channel="hotline")
    aid = start(client, hotline)
    hall_aid = start(client, hall)
    assert err(client.post(f"/bc-authorize/{hall_aid}/sms-code",
                           headers=hall.basic)) == "unauthorized_client"
    assert err(client.post(f"/bc-authorize/{aid}/sms-code",
                           headers=other.basic)) == "invalid_grant"
    no_auth = client.post(f"/bc-authorize/{aid}/sms-code")
    assert no_auth.status_code in (400, 401) and err(no_auth) == "invalid_client"
    strong = start(client, hotline, acr_values="L3")
    assert err(client.post(f"/bc-authorize/{strong}/sms-code",
                           headers=hotline.basic)) == "unmet_authentication_requirements"
    first = client.post(f"/bc-authorize/{aid}/sms-code", headers=hotline.basic)
    assert first.status_code == 200
    # One code a minute per phone (SMS_PHONE_INTERVAL): the next is refused, with a wait.
    second = client.post(f"/bc-authorize/{aid}/sms-code", headers=hotline.basic)
    assert second.status_code == 429 and err(second) == "temporarily_unavailable"
    assert int(second.headers["Retry-After"]) > 0
    approve(aid, ok=False)  # the citizen denied it on the app meanwhile
    late = client.post(f"/bc-authorize/{aid}/sms-code", headers=hotline.basic,
                       data={"code": last_sms_code(ctx, CITIZEN_PHONE, "ciba")})
    assert err(late) == "invalid_grant"
    assert err(poll(client, hotline, aid)) == "access_denied"
    assert events("ciba.sms_sent") and len(events("ciba.sms_sent")) == 1


def test_demo_consoles_render_and_need_the_demo_clients(client):
    for kind in ("hall", "hotline"):
        page = client.get(f"/demo/{kind}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert 'name="csrf_token"' in html and 'name="login_hint"' in html
        assert 'name="acting_party"' in html
    assert client.get("/demo/hotline/r/unknown").status_code == 404
    assert client.get("/demo/other").status_code == 404


def test_private_key_jwt_at_the_backchannel_endpoint(client, person):
    key = ECKey.generate_key("P-256", private=True, parameters={"kid": "hall-k1"})
    pub = {**key.as_dict(private=False), "kid": "hall-k1"}
    register_client(client_id="hall-pkj", name="窗口 pkj", secret=None,
                    auth_method="private_key_jwt", redirect_uris=[], grant_types=[CIBA],
                    post_logout_redirect_uris=[], backchannel_logout_uri=None,
                    first_party=True, sensitive_scopes=[], channel="hall",
                    jwks={"keys": [pub]}, id_token_alg=None)

    def assertion(aud):
        now = int(time.time())
        return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": jwt.encode({"alg": "ES256", "kid": "hall-k1"}, {
                    "iss": "hall-pkj", "sub": "hall-pkj", "aud": aud, "iat": now,
                    "exp": now + 60, "jti": secrets.token_urlsafe(8)}, key)}

    base = {"scope": "openid", "login_hint": CITIZEN_ID, "binding_message": BINDING,
            "acting_party": CLERK}
    # CIBA §7.1: the endpoint's own URL is an accepted audience, as is the issuer.
    resp = client.post("/bc-authorize",
                       data={**base, **assertion("http://localhost/bc-authorize")})
    assert resp.status_code == 200, resp.get_json()
    aid = resp.get_json()["auth_req_id"]
    elsewhere = client.post("/bc-authorize",
                            data={**base, **assertion("https://elsewhere.example/")})
    assert err(elsewhere) == "invalid_client"
    approve(aid)
    tok = client.post("/token", data={"grant_type": CIBA, "auth_req_id": aid,
                                      **assertion("http://localhost")})
    assert tok.status_code == 200, tok.get_json()
    assert decode(tok.get_json()["id_token"])["act"] == {"sub": CLERK, "client_id": "hall-pkj"}


def test_in_person_document_check_at_a_hall_counter_reaches_l5(client, person):
    set_level(person, "L3")
    rp = ciba_client(in_person_checks=True)
    aid = start(client, rp, in_person_check="document", acr_values="L5")
    approve(aid, amr=["pwd"], acr="L2")  # the app itself only proves a password
    tok = poll(client, rp, aid).get_json()
    idt = decode(tok["id_token"])
    assert idt["acr"] == "L5" and idt["amr"] == ["pwd", "counter"]
    assert idt["act"] == {"sub": CLERK, "client_id": "hall1"} and idt["channel"] == "hall"
    db.session.expire_all()
    account = db.session.get(Person, person.id)
    assert account.assurance_level == "L5" and account.assurance_method == "counter"
    raised = events("assurance.raised")[-1]
    assert raised.actor == CLERK and raised.details["to"] == "L5"


def test_in_person_check_without_the_app_approval_gives_nothing(client, person):
    rp = ciba_client(in_person_checks=True)
    aid = start(client, rp, in_person_check="document")
    approve(aid, ok=False)  # the clerk's word alone never signs anyone in
    assert err(poll(client, rp, aid)) == "access_denied"
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level != "L5"


def test_only_hall_counters_may_vouch_for_an_in_person_check(client, person):
    hotline = ciba_client("hotline1", channel="hotline")
    resp = bc(client, hotline, in_person_check="document")
    assert resp.status_code == 400 and err(resp) == "invalid_request"
    hall = ciba_client(in_person_checks=True)
    resp = bc(client, hall, in_person_check="video")
    assert resp.status_code == 400 and err(resp) == "invalid_request"


# -- flooding and the in-person permission ------------------------------------------


def test_pending_requests_per_client_and_person_are_capped(ctx, client, person):
    """A counter pushing prompt after prompt to wear the citizen down: past
    CIBA_MAX_PENDING_PER_PERSON waiting requests it is told to wait (429, Retry-After),
    the extra request never reaches the app, and the refusal is audited."""
    assert ctx.config["CIBA_MAX_PENDING_PER_PERSON"] == 3
    rp = ciba_client()
    first = [start(client, rp) for _ in range(3)]
    resp = bc(client, rp)
    assert resp.status_code == 429 and err(resp) == "temporarily_unavailable"
    assert 0 < int(resp.headers["Retry-After"]) <= 300
    assert resp.headers["Cache-Control"] == "no-store"
    assert [a.id for a in approvals.pending_for(person.id)] == first
    [refused] = events("ciba.refused")
    assert refused.details["error"] == "too_many_pending" and refused.subject == person.id
    assert refused.client_id == "hall1" and refused.details["acting_party"] == CLERK
    assert len(events("ciba.requested")) == 3
    # Another counter's requests, and another person, are counted apart.
    assert bc(client, ciba_client("hall2")).status_code == 200
    make_person("110105199003071239", "王五", "Other-Pass-77", "13700000000")
    assert bc(client, rp, login_hint="110105199003071239").status_code == 200
    # Once the citizen answers one, the counter may ask again.
    approve(first[0], ok=False)
    assert bc(client, rp).status_code == 200
    assert bc(client, rp).status_code == 429


def test_racing_requests_cannot_slip_past_the_pending_cap(ctx, client, person, monkeypatch):
    """Two requests from two workers at once, with room for one: the second arrives while
    the first is being made. Made first and counted after, exactly one is kept."""
    from idp.channels import ciba

    monkeypatch.setitem(ctx.config, "CIBA_MAX_PENDING_PER_PERSON", 1)
    rp = ciba_client()
    real = approvals.create
    inner = []

    def racing(*args, **kwargs):
        if not inner:
            inner.append(None)
            inner.append(bc(client, rp, binding_message="窗口 3 核对码 0002"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ciba.approvals, "create", racing)
    outer = bc(client, rp)
    assert sorted([outer.status_code, inner[1].status_code]) == [200, 429]
    assert len(approvals.pending_for(person.id)) == 1


def test_in_person_checks_need_the_clients_permission(client, person):
    """in_person_check=document raises the account to L5: only a hall client registered
    for it may ask; one without is unauthorized_client and nothing waits on the app."""
    set_level(person, "L3")
    plain = ciba_client()
    resp = bc(client, plain, in_person_check="document", acr_values="L5")
    assert resp.status_code == 400 and err(resp) == "unauthorized_client"
    assert approvals.pending_for(person.id) == []
    # Without the check the same client works as before.
    assert bc(client, plain).status_code == 200
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L3"


def test_permission_withdrawn_before_the_poll_gives_no_l5(client, person):
    set_level(person, "L3")
    rp = ciba_client(in_person_checks=True)
    aid = start(client, rp, in_person_check="document")
    row = db.session.scalar(db.select(Client).where(Client.client_id == "hall1"))
    row.client_metadata = {k: v for k, v in row.client_metadata.items()
                           if k != "in_person_checks"}
    db.session.commit()
    forget_client("hall1")
    approve(aid, amr=["pwd"], acr="L2")
    idt = decode(poll(client, rp, aid).get_json()["id_token"])
    assert idt["acr"] == "L2" and "counter" not in idt["amr"]
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L3"


@pytest.mark.parametrize("channel, grants", [("hotline", (CIBA,)), ("web", ()),
                                             ("hall", ("client_credentials",))])
def test_only_hall_ciba_clients_can_be_registered_for_in_person_checks(ctx, channel, grants):
    with pytest.raises(ClientError, match="in-person checks"):
        ciba_client("x1", channel=channel, grants=grants, in_person_checks=True)
    assert ciba_client("x2").client_id == "x2"


def test_demo_hall_client_may_check_in_person_also_in_an_older_database(ctx, client,
                                                                        monkeypatch, tmp_path):
    from idp.demo import seed as demo_seed

    monkeypatch.setattr(demo_seed, "secrets_path", lambda: str(tmp_path / "demo.json"))
    demo_seed.seed()

    def row(cid):
        db.session.expire_all()
        return db.session.scalar(db.select(Client).where(Client.client_id == cid))

    assert row("demo-hall").meta("in_person_checks") is True
    assert not row("demo-hotline").meta("in_person_checks")
    # A demo database seeded before the permission existed: re-seeding grants it,
    # keeping the client (and its secret) as it is.
    old = row("demo-hall")
    secret_hash = old.client_secret_hash
    old.client_metadata = {k: v for k, v in old.client_metadata.items()
                           if k != "in_person_checks"}
    db.session.commit()
    forget_client("demo-hall")
    demo_seed.seed()
    hall = row("demo-hall")
    assert hall.meta("in_person_checks") is True and hall.client_secret_hash == secret_hash
    secret = json.loads((tmp_path / "demo.json").read_text())["demo-hall"]
    resp = bc(client, RP("demo-hall", secret), login_hint=demo_seed.DEMO_CITIZEN["id_number"],
              in_person_check="document")
    assert resp.status_code == 200, resp.get_json()
