"""The ``claims`` request parameter (OIDC Core §5.5): individually requested claims are
released when the client is allowed the covering scope and the person consented to
them, in the member (ID token or userinfo) they were asked for."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PASSWORD,
    CITIZEN_PHONE,
    authorize_url,
    exchange,
    form_fields,
    make_client,
    pkce_pair,
    query,
)


def _id_token(client, token: str) -> dict:
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    return jwt.decode(token, jwks, algorithms=["ES256", "RS256"]).claims


def _authorize(client, rp, claims: dict, *, decline=(), scope="openid", **params):
    """Run one authorization: sign in if asked, consent (declining ``decline``) if asked.
    Returns (final redirect response, the consent page's HTML or None, verifier)."""
    verifier, challenge = pkce_pair()
    resp = client.get(authorize_url(rp, scope=scope, claims=json.dumps(claims),
                                    code_challenge=challenge, code_challenge_method="S256",
                                    **params))
    page = None
    for _ in range(6):
        if resp.status_code != 302:
            break
        loc = resp.headers["Location"]
        path = urlsplit(loc).path
        if path == "/login":
            fields = form_fields(client.get(loc).get_data(as_text=True))
            resp = client.post("/login", data={**fields, "username": CITIZEN_ID,
                                               "password": CITIZEN_PASSWORD})
        elif path == "/consent":
            page = client.get(loc).get_data(as_text=True)
            fields = form_fields(page)
            resp = client.post("/consent", data={**fields, "consent": "allow",
                                                 "decline_claim": list(decline)})
        elif path == "/authorize":
            resp = client.get(loc)
        else:
            break
    return resp, page, verifier


def _tokens(client, rp, claims, **kw) -> tuple[dict, str | None]:
    resp, page, verifier = _authorize(client, rp, claims, **kw)
    q = query(resp.headers["Location"])
    assert "code" in q, q
    body = exchange(client, rp, q["code"], verifier)
    assert body.status_code == 200, body.get_json()
    return body.get_json(), page


def _listed(page: str | None) -> set[str]:
    return set(re.findall(r'data-claim="([^"]+)"', page or ""))


def _userinfo(client, at: str) -> dict:
    resp = client.get("/userinfo", headers={"Authorization": "Bearer " + at})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_each_claim_is_released_where_it_was_asked_for(client, person):
    rp = make_client("claims-where")
    wanted = {"id_token": {"name": {"essential": True}},
              "userinfo": {"phone_number": None, "phone_number_verified": None}}
    body, page = _tokens(client, rp, wanted, scope="openid offline_access")
    # The consent page lists the claims asked for by name beside the scopes.
    assert _listed(page) == {"name", "phone_number", "phone_number_verified"}
    assert "应用标注为必需" in page  # name is essential
    idt = _id_token(client, body["id_token"])
    assert idt["name"] == "李四"
    assert "phone_number" not in idt and "id_number_masked" not in idt  # no profile scope
    info = _userinfo(client, body["access_token"])
    assert info["phone_number"] == CITIZEN_PHONE and info["phone_number_verified"] is True
    assert "name" not in info
    # The refresh token's grant keeps the claims: the same in the next ID token and userinfo.
    fresh = client.post("/token", headers=rp.basic, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"]}).get_json()
    assert _id_token(client, fresh["id_token"])["name"] == "李四"
    assert _userinfo(client, fresh["access_token"])["phone_number"] == CITIZEN_PHONE


def test_claims_covered_by_a_requested_scope_are_not_listed_again(client, person):
    rp = make_client("claims-covered")
    body, page = _tokens(client, rp, {"userinfo": {"phone_number": None}},
                         scope="openid phone")
    assert page is not None and _listed(page) == set()
    assert _userinfo(client, body["access_token"])["phone_number"] == CITIZEN_PHONE


def test_a_claim_needs_the_clients_registration_for_its_scope(client, person):
    """id_number by name is still the idcard scope's: absent (even when essential) for a
    client not registered for it, and never shown on the consent page."""
    plain = make_client("claims-plain")
    wanted = {"id_token": {"id_number": {"essential": True}},
              "userinfo": {"id_number": {"essential": True}, "name": None}}
    body, page = _tokens(client, plain, wanted)
    assert _listed(page) == {"name"}
    assert "id_number" not in _id_token(client, body["id_token"])
    info = _userinfo(client, body["access_token"])
    assert "id_number" not in info and info["name"] == "李四"
    assert CITIZEN_ID not in json.dumps(info)
    # Registered for idcard: listed, consented, released.
    registered = make_client("claims-idcard", sensitive=("idcard",))
    body, page = _tokens(client, registered, wanted)
    assert _listed(page) == {"id_number", "name"}
    assert _id_token(client, body["id_token"])["id_number"] == CITIZEN_ID
    assert _userinfo(client, body["access_token"])["id_number"] == CITIZEN_ID


def test_a_declined_essential_claim_is_absent_and_asked_again(client, person):
    """§5.5: not releasing an essential claim is not an error; the response comes, without it."""
    rp = make_client("claims-decline")
    wanted = {"userinfo": {"phone_number": {"essential": True}, "name": None}}
    body, _page = _tokens(client, rp, wanted, decline=["phone_number"])
    info = _userinfo(client, body["access_token"])
    assert "phone_number" not in info and info["name"] == "李四"
    # Declined is not remembered as given: the next request asks again.
    resp, _p, _v = _authorize(client, rp, wanted, prompt="none")
    assert query(resp.headers["Location"])["error"] == "consent_required"


def test_remembered_consent_covers_the_claims_and_a_new_claim_asks_again(ctx, client, person):
    from idp.extensions import db
    from idp.models import Consent

    rp = make_client("claims-remember")
    wanted = {"userinfo": {"phone_number": None}}
    _tokens(client, rp, wanted)
    row = db.session.get(Consent, (person.id, rp.client_id))
    assert row.claims.split() == ["phone_number"]
    # The account's application page says what the application was given by name.
    apps = client.get("/account/apps").get_data(as_text=True)
    assert "您的手机号码" in apps
    # The same request again: no consent page, the claim still released.
    resp, page, verifier = _authorize(client, rp, wanted, prompt="none")
    q = query(resp.headers["Location"])
    assert page is None and "code" in q
    at = exchange(client, rp, q["code"], verifier).get_json()["access_token"]
    assert _userinfo(client, at)["phone_number"] == CITIZEN_PHONE
    # A claim not consented to before needs consent.
    more = {"userinfo": {"phone_number": None}, "id_token": {"name": None}}
    resp, _p, _v = _authorize(client, rp, more, prompt="none")
    assert query(resp.headers["Location"])["error"] == "consent_required"
    body, page = _tokens(client, rp, more)
    assert _listed(page) == {"name", "phone_number"}
    assert _id_token(client, body["id_token"])["name"] == "李四"


def test_unknown_and_unlisted_claims_are_ignored(client, person):
    rp = make_client("claims-unknown")
    body, page = _tokens(client, rp, {"userinfo": {"birthdate": {"essential": True}},
                                      "id_token": {"email": None}})
    assert page is not None and _listed(page) == set()
    info = _userinfo(client, body["access_token"])
    assert "birthdate" not in info and set(info) == {"sub"}


def test_sub_asked_for_by_value_gets_tokens_only_for_that_subject(client, person):
    """§5.5.1: with id_token.sub.value, someone else signed in gets login_required."""
    rp = make_client("claims-sub")
    _tokens(client, rp, {"userinfo": {"name": None}})  # signed in; sub is person.id here
    mine = {"id_token": {"sub": {"value": person.id}}}
    resp, _page, _v = _authorize(client, rp, mine, prompt="none")
    assert "code" in query(resp.headers["Location"])
    other = {"id_token": {"sub": {"value": "someone-else"}}}
    for prompt in ("none", None):
        resp, _page, _v = _authorize(client, rp, other, prompt=prompt)
        q = query(resp.headers["Location"])
        assert q["error"] == "login_required" and "code" not in q, prompt
