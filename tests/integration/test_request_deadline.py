"""No time limit without a warning and an extension (WCAG 2.2.1, issue 11): the sign-in
pages say by when the pending request must be finished (local time, zone named), offer
``POST /login/extend`` (CSRF, this browser's live request only, capped at
``AUTH_REQUEST_MAX_AGE``), and a form posted after the request lapsed answers with a
page that offers to start the relying party's request again."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import urlsplit

from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PASSWORD,
    authorize_url,
    form_fields,
    query,
)

JSON = {"Accept": "application/json"}


def _start(client, rp, **params):
    """An authorization request up to its login page: (rid, the page's HTML)."""
    resp = client.get(authorize_url(rp, **params))
    loc = resp.headers["Location"]
    assert urlsplit(loc).path == "/login"
    return query(loc)["rid"], client.get(loc).get_data(as_text=True)


def _record(app, rid):
    from idp.interaction.request import _unseal
    from idp.store import store

    with app.test_request_context("/"):
        return _unseal(store().get(f"authreq:{rid}"))


def _rewrite(app, rid, **changes):
    """Re-seal the stored request with ``changes`` (as if time had passed)."""
    from idp.interaction.request import _key, _seal
    from idp.store import store

    with app.test_request_context("/"):
        req = _record(app, rid)
        for name, value in changes.items():
            setattr(req, name, value)
        store().set(_key(rid), _seal(req), 7200)


def _extend(client, rid, token, **headers):
    return client.post("/login/extend", data={"rid": rid, "csrf_token": token},
                       headers={**JSON, **headers})


def test_the_login_page_says_by_when_in_words_and_local_time(ctx, client, person, rp):
    _rid, page = _start(client, rp)
    text = html.unescape(page)
    assert 'id="deadline-text"' in page and "北京时间" in text
    assert re.search(r"还有约 1[45] 分钟", text)
    assert 'id="deadline-warning"' in page and 'aria-live="polite"' in page
    assert 'data-warn="120"' in page and "deadline.js" in page
    # In English too.
    from flask_babel import force_locale
    from flask_babel import gettext as _

    with ctx.test_request_context("/"), force_locale("en"):
        assert _("延长时间") == "Extend time" and _("重新开始") == "Start again"
        told = _("请在 %(at)s 前完成（还有约 %(minutes)d 分钟）。超时后需要重新开始，"
                 "已填写的内容不会保存。", at="x", minutes=3)
        assert "about 3 min" in told


def test_extending_gives_more_time_up_to_the_cap(ctx, client, person, rp, monkeypatch):
    monkeypatch.setitem(ctx.config, "AUTH_REQUEST_EXTEND_SECONDS", 1800)
    rid, page = _start(client, rp)
    token = form_fields(page)["csrf_token"]
    before = _record(ctx, rid).expires
    resp = _extend(client, rid, token)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["extended"] is True and body["final"] is False
    assert body["expires_in"] > int(ctx.config["AUTH_REQUEST_TTL"])
    assert _record(ctx, rid).expires > before + 600
    # Started nearly an hour ago: the extension stops at the hour, then no further.
    started = time.time() - int(ctx.config["AUTH_REQUEST_MAX_AGE"]) + 300
    _rewrite(ctx, rid, created=started, expires=time.time() + 60)
    capped = _extend(client, rid, token).get_json()
    assert capped["extended"] is True and capped["final"] is True
    assert _record(ctx, rid).expires <= started + int(ctx.config["AUTH_REQUEST_MAX_AGE"])
    again = _extend(client, rid, token).get_json()
    assert again["extended"] is False and again["final"] is True
    # A later step of the sign-in does not take the extension back, and it still works.
    done = client.post("/login", data={**form_fields(page), "username": CITIZEN_ID,
                                       "password": CITIZEN_PASSWORD})
    assert done.status_code == 302 and "/authorize" in done.headers["Location"]


def test_extending_needs_the_csrf_token(ctx, client, person, rp):
    rid, _page = _start(client, rp)
    before = _record(ctx, rid).expires
    resp = client.post("/login/extend", data={"rid": rid}, headers=JSON)
    assert resp.status_code == 400
    assert _record(ctx, rid).expires == before


def test_extending_is_refused_for_a_tampered_lapsed_or_another_browsers_request(
        ctx, client, person, rp):
    from idp.store import store

    rid, page = _start(client, rp)
    token = form_fields(page)["csrf_token"]
    # Another browser (its own cookie and CSRF token) cannot keep this request alive.
    other = ctx.test_client()
    other_token = form_fields(other.get("/login").get_data(as_text=True))["csrf_token"]
    refused = _extend(other, rid, other_token)
    assert refused.status_code == 400 and refused.get_json()["error"] == "request_expired"
    # Lapsed: not revived.
    _rewrite(ctx, rid, expires=time.time() - 1)
    lapsed = _extend(client, rid, token)
    assert lapsed.status_code == 400 and lapsed.get_json()["error"] == "request_expired"
    assert _record(ctx, rid).expires < time.time()
    # Tampered or unknown.
    rid2, _page2 = _start(client, rp)
    with ctx.test_request_context("/"):
        sealed = store().get(f"authreq:{rid2}")["sealed"]
        store().set(f"authreq:{rid2}", {"sealed": sealed[:-4] + "AAAA"}, 60)
    assert _extend(client, rid2, token).status_code == 400
    assert _extend(client, "no-such-request", token).status_code == 400


def test_a_form_posted_after_the_request_lapsed_offers_to_start_it_again(ctx, client, person,
                                                                        rp):
    rid, page = _start(client, rp, state="st-42")
    _rewrite(ctx, rid, expires=time.time() - 1)
    resp = client.post("/login", data={**form_fields(page), "username": CITIZEN_ID,
                                       "password": CITIZEN_PASSWORD})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "登录请求已过期" in body
    again = html.unescape(re.search(r'id="restart" href="([^"]+)"', body).group(1))
    assert urlsplit(again).path == "/authorize"
    asked = query(again)
    assert asked["state"] == "st-42" and asked["client_id"] == rp.client_id
    assert "_rid" not in asked
    # Starting again is a new request for the same relying party's parameters.
    restarted = client.get(again)
    assert urlsplit(restarted.headers["Location"]).path == "/login"
    assert query(restarted.headers["Location"])["rid"] != rid
    # The lapsed request itself stays dead.
    assert client.get(f"/login?rid={rid}").status_code == 400


def test_an_unknown_request_gets_the_plain_advice(ctx, client):
    resp = client.get("/login?rid=nothing-here")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "登录请求已过期" in body
    assert 'id="restart"' not in body and "请回到原网站重新点击登录" in body


def test_a_plain_form_post_extends_and_comes_back(ctx, client, person, rp):
    rid, page = _start(client, rp)
    token = form_fields(page)["csrf_token"]
    back = f"/login?rid={rid}"
    resp = client.post("/login/extend", data={"rid": rid, "csrf_token": token, "back": back},
                       headers={"Accept": "text/html"})
    assert resp.status_code == 303 and resp.headers["Location"] == back
    evil = client.post("/login/extend", data={"rid": rid, "csrf_token": token,
                                              "back": "//evil.example/"})
    assert evil.status_code == 303 and evil.headers["Location"] == "/"


def test_registration_recovery_and_consent_pages_say_it_too(ctx, client, person):
    from tests.helpers import make_client

    rp = make_client("third", first_party=False)
    start = client.get(authorize_url(rp, prompt="create"))
    register = start.headers["Location"]
    assert urlsplit(register).path == "/register"
    rid = query(register)["rid"]
    assert 'id="deadline-text"' in client.get(register).get_data(as_text=True)
    assert 'id="deadline-text"' in client.get(f"/recover?rid={rid}").get_data(as_text=True)
    page = client.get(f"/login?rid={rid}").get_data(as_text=True)
    consent = client.post("/login", data={**form_fields(page), "username": CITIZEN_ID,
                                          "password": CITIZEN_PASSWORD})
    resp = client.get(consent.headers["Location"])
    while urlsplit(resp.headers.get("Location", "")).path == "/authorize":
        resp = client.get(resp.headers["Location"])
    assert urlsplit(resp.headers["Location"]).path == "/consent"
    body = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="deadline-text"' in body and 'id="deadline-extend"' in body
    # The warning's "start again" goes through the sign-in page, which offers the restart.
    assert f'href="/login?rid={query(resp.headers["Location"])["rid"]}"' in body
    # A page without a pending request says nothing of a time limit.
    assert 'id="deadline"' not in client.get("/recover").get_data(as_text=True)
