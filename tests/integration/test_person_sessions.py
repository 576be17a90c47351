"""A person's sessions and grants as a whole: listing them, ending them all (with every
relying party told), and revoking every token of the account."""

from __future__ import annotations

from concurrent.futures import wait
from urllib.parse import urlsplit

from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PASSWORD,
    authorize_url,
    form_fields,
    make_client,
    tokens_for,
)
from tests.integration.test_logout import Receiver

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def _sign_in(ctx, ua: str = CHROME, addr: str = "203.0.113.9"):
    browser = ctx.test_client()
    env = {"REMOTE_ADDR": addr, "HTTP_USER_AGENT": ua}
    page = browser.get("/login", environ_base=env).get_data(as_text=True)
    resp = browser.post("/login", data={**form_fields(page), "username": CITIZEN_ID,
                                        "password": CITIZEN_PASSWORD}, environ_base=env)
    assert resp.status_code == 302
    return browser


def test_sessions_of_lists_each_browser_with_device_and_masked_network(ctx, person):
    from idp.authn import session as sso

    _sign_in(ctx)
    _sign_in(ctx, ua="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Version/17.0 Safari/604.1",
             addr="198.51.100.20")
    with ctx.test_request_context("/"):
        found = sso.sessions_of(person.id)
    assert len(found) == 2
    assert {s.device for s in found} == {"Chrome · Windows", "Safari · iOS"}
    assert {s.network for s in found} == {"203.0.113.*", "198.51.100.*"}
    # Nothing from the raw address or header is kept.
    assert not any("203.0.113.9" in str(s.record()) for s in found)


def test_ending_all_sessions_tells_every_relying_party_and_keeps_the_asked_one(ctx, person):
    from idp import single_logout
    from idp.authn import session as sso

    receiver = Receiver()
    try:
        rp = make_client("bc-rp", backchannel=receiver.url)
        phone, laptop, here = _sign_in(ctx), _sign_in(ctx), _sign_in(ctx)
        for browser in (phone, laptop):
            tokens_for(browser, rp)
        with ctx.test_request_context("/"):
            sessions = sso.sessions_of(person.id)
            keep = next(s for s in sessions
                        if s.key == sso._key(here.get_cookie(ctx.config["SSO_COOKIE_NAME"]).value))
            futures = single_logout.end_all_sessions(person.id, actor="test",
                                                     reason="password_reset", keep=keep)
            wait(futures, timeout=10)
            left = sso.sessions_of(person.id)
        assert [s.key for s in left] == [keep.key]
        assert len(receiver.wait(2)) == 2
        # The ended browsers are signed out: /authorize sends them to the login page.
        for browser, signed_in in ((phone, False), (laptop, False), (here, True)):
            loc = browser.get(authorize_url(rp, scope="openid")).headers["Location"]
            assert (urlsplit(loc).path == "/login") is not signed_in
    finally:
        receiver.close()


def test_ending_another_session_does_not_sign_this_browser_out(ctx, person):
    from idp import single_logout
    from idp.authn import session as sso

    other = _sign_in(ctx)
    mine = _sign_in(ctx)
    cookie = ctx.config["SSO_COOKIE_NAME"]
    other_key = sso._key(other.get_cookie(cookie).value)
    with ctx.test_request_context("/", headers={
            "Cookie": f"{cookie}={mine.get_cookie(cookie).value}"}):
        assert sso.current() is not None
        target = next(s for s in sso.sessions_of(person.id) if s.key == other_key)
        single_logout.end_session(target, actor="test", reason="ended_by_person")
        from flask import g

        assert not g.get("idp_clear_sso_cookie")
        assert sso.current() is not None


def test_revoke_person_ends_refresh_and_access_tokens_of_every_client(ctx, client, person):
    from idp.revocation import revoke_person

    rp1, rp2 = make_client("one"), make_client("two")
    t1 = tokens_for(client, rp1, scope="openid profile offline_access")
    t2 = tokens_for(client, rp2, scope="openid profile")  # no refresh token
    for t in (t1, t2):
        assert client.get("/userinfo", headers={
            "Authorization": "Bearer " + t["access_token"]}).status_code == 200
    with ctx.test_request_context("/"):
        assert revoke_person(person.id, reason="password_reset") >= 2
    for t in (t1, t2):
        assert client.get("/userinfo", headers={
            "Authorization": "Bearer " + t["access_token"]}).status_code == 401
    resp = client.post("/token", data={"grant_type": "refresh_token",
                                       "refresh_token": t1["refresh_token"]},
                       headers=rp1.basic)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
