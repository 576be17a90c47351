"""The sign-in interaction: the pending request, its checks, and the holes closed in it."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PHONE,
    authorize_url,
    follow_login,
    form_fields,
    make_client,
    pkce_pair,
    query,
)


def _rid(location: str) -> str:
    return query(location)["rid"]


def _raw_pending(app, rid: str) -> str:
    """What the store holds for a pending request, as text (what a Redis dump or a
    ``kv_entry`` row shows an operator)."""
    from idp.store import store

    with app.test_request_context("/"):
        return json.dumps(store().get(f"authreq:{rid}"), ensure_ascii=False)


@pytest.mark.parametrize("hint", [CITIZEN_ID, CITIZEN_PHONE, "+86 139 1234 5678"])
def test_a_pending_request_keeps_no_personal_data_in_the_clear(ctx, client, person, rp, hint):
    resp = client.get(authorize_url(rp, login_hint=hint, state="s-1"))
    assert urlsplit(resp.headers["Location"]).path == "/login"
    raw = _raw_pending(ctx, _rid(resp.headers["Location"]))
    digits = "".join(ch for ch in hint if ch.isdigit())
    assert raw != "null"
    for secret in (hint, CITIZEN_ID, CITIZEN_PHONE, digits, "login_hint", rp.redirect_uri):
        assert secret not in raw
    # ... and the sign-in page still gets the hint from it.
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert f'value="{hint}"' in page


def test_a_tampered_pending_record_is_an_expired_request(ctx, client, person, rp):
    from idp.store import store

    resp = client.get(authorize_url(rp))
    rid = _rid(resp.headers["Location"])
    with ctx.test_request_context("/"):
        sealed = store().get(f"authreq:{rid}")["sealed"]
        store().set(f"authreq:{rid}", {"sealed": sealed[:-4] + "AAAA"}, 60)
    page = client.get(resp.headers["Location"])
    assert page.status_code == 400 and "登录请求已过期" in page.get_data(as_text=True)


def test_decisions_on_a_pending_request_never_apply_to_other_parameters(ctx, client, person):
    """A decision recorded on a pending request (here: "deny") belongs to that request:
    the same ``_rid`` carried onto other parameters starts a new request instead."""
    rp = make_client("third", first_party=False)
    resp = client.get(authorize_url(rp, scope="openid profile", state="a"))
    resp = follow_login(client, resp, consent="deny")
    assert query(resp.headers["Location"])["error"] == "access_denied"
    resp = client.get(authorize_url(rp, scope="openid profile", state="b"))
    loc = resp.headers["Location"]
    assert urlsplit(loc).path == "/consent"
    page = client.get(loc).get_data(as_text=True)
    back = client.post("/consent", data={**form_fields(page), "consent": "deny"})
    swapped = client.get(authorize_url(rp, scope="openid profile", state="c", _rid=_rid(loc)))
    assert urlsplit(swapped.headers["Location"]).path == "/consent"
    # The request it was made for is denied, as the person said.
    denied = client.get(back.headers["Location"])
    assert query(denied.headers["Location"])["error"] == "access_denied"


@pytest.mark.parametrize("mode", ["fragment", "web_message", "form_post.jwe"])
def test_response_modes_not_supported_are_refused_not_ignored(client, person, rp, mode):
    resp = client.get(authorize_url(rp, response_mode=mode, state="st"))
    assert resp.status_code == 302 and "#" not in resp.headers["Location"]
    q = query(resp.headers["Location"])
    assert q["error"] == "invalid_request" and "response_mode" in q["error_description"]
    assert q["state"] == "st"


def test_response_mode_query_is_accepted(client, person, rp):
    verifier, challenge = pkce_pair()
    resp = follow_login(client, client.get(authorize_url(
        rp, response_mode="query", code_challenge=challenge, code_challenge_method="S256")))
    assert "code" in query(resp.headers["Location"])


def test_pending_requests_per_address_are_bounded(ctx, client, rp, monkeypatch):
    """Each anonymous /authorize used to leave a 15-minute record behind, without limit."""
    monkeypatch.setitem(ctx.config, "AUTH_REQUESTS_PER_MINUTE", 3)
    for _ in range(3):
        assert urlsplit(client.get(authorize_url(rp)).headers["Location"]).path == "/login"
    # A fresh browser (no cookies) from the same address is counted too.
    other = ctx.test_client()
    resp = other.get(authorize_url(rp, state="over"))
    q = query(resp.headers["Location"])
    assert resp.headers["Location"].startswith(rp.redirect_uri)
    assert q["error"] == "temporarily_unavailable" and q["state"] == "over"
    # Another address is not affected.
    resp = other.get(authorize_url(rp), environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert urlsplit(resp.headers["Location"]).path == "/login"


def test_prompt_none_answers_for_the_first_unmet_check(ctx, client, person):
    """Under prompt=none each interaction is its OIDC error (Core §3.1.2.6)."""
    rp = make_client("third", first_party=False)
    resp = client.get(authorize_url(rp, prompt="none"))
    assert query(resp.headers["Location"])["error"] == "login_required"
    follow_login(client, client.get(authorize_url(make_client("first", first_party=True))))
    resp = client.get(authorize_url(rp, prompt="none"))
    assert query(resp.headers["Location"])["error"] == "consent_required"
    resp = client.get(authorize_url(rp, prompt="none", acr_values="L4"))
    assert query(resp.headers["Location"])["error"] == "interaction_required"


def test_checks_run_in_order_and_each_names_its_page():
    from idp.interaction import checks

    names = [c.__name__ for c in checks.DEFAULT]
    assert names == ["consent_denied", "registration", "session", "prompt_login", "max_age",
                     "level", "consent", "enterprise"]


def test_discovery_lists_only_the_supported_response_modes(client):
    # query, form_post (tests/integration/test_form_post.py) and JARM's signed forms
    # (idp.oidc.jarm); never one we would not honour (plain fragment: code flow only).
    assert client.get("/.well-known/openid-configuration").get_json()[
        "response_modes_supported"] == ["query", "form_post", "jwt", "query.jwt",
                                        "fragment.jwt", "form_post.jwt"]
