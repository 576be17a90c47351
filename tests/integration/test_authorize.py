"""The authorization endpoint: validation, prompt/max_age, consent, sensitive scopes."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.helpers import (
    CITIZEN_ID,
    authorize_url,
    exchange,
    follow_login,
    form_fields,
    get_code,
    make_client,
    query,
    tokens_for,
)


def test_unknown_client_gets_an_error_page_not_a_redirect(client, rp):
    resp = client.get(authorize_url(rp, client_id="nobody"))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "invalid_client" in resp.get_data(as_text=True)


def test_unregistered_redirect_uri_gets_an_error_page(client, rp):
    resp = client.get(authorize_url(rp, redirect_uri="https://evil.example/cb"))
    assert resp.status_code == 400 and "Location" not in resp.headers
    # Exact match only: a prefix extension is not the registered URI either.
    resp = client.get(authorize_url(rp, redirect_uri=rp.redirect_uri + "/x"))
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_errors_with_a_valid_redirect_go_back_to_the_client(client, rp):
    resp = client.get(authorize_url(rp, response_type="token", state="st"))
    assert resp.status_code == 302
    q = query(resp.headers["Location"])
    assert q["error"] == "unsupported_response_type" and q["state"] == "st"
    resp = client.get(authorize_url(rp, scope="openid bogus", state="st2"))
    q = query(resp.headers["Location"])
    assert q["error"] == "invalid_scope" and q["state"] == "st2"


def test_prompt_none_without_session_is_login_required(client, person, rp):
    resp = client.get(authorize_url(rp, prompt="none", state="abc"))
    q = query(resp.headers["Location"])
    assert resp.headers["Location"].startswith(rp.redirect_uri)
    assert q["error"] == "login_required" and q["state"] == "abc"
    assert q["iss"] == "http://localhost"  # RFC 9207 on error responses too


def test_signed_in_browser_gets_a_code_without_login(client, person, rp):
    get_code(client, rp)
    resp = client.get(authorize_url(rp, prompt="none"))
    assert resp.status_code == 302 and "code" in query(resp.headers["Location"])


def test_prompt_login_forces_a_fresh_sign_in(client, person, rp):
    get_code(client, rp)
    resp = client.get(authorize_url(rp, prompt="login"))
    assert urlsplit(resp.headers["Location"]).path == "/login"
    resp = follow_login(client, resp)
    assert "code" in query(resp.headers["Location"])


def test_max_age_zero_forces_a_fresh_sign_in(client, person, rp):
    get_code(client, rp)
    resp = client.get(authorize_url(rp, max_age="0"))
    assert urlsplit(resp.headers["Location"]).path == "/login"
    resp = client.get(authorize_url(rp, max_age="abc"))
    assert query(resp.headers["Location"])["error"] == "invalid_request"


def test_consent_page_lists_data_in_chinese_and_is_remembered(client, person, ctx):
    rp = make_client("third", first_party=False)
    resp = client.get(authorize_url(rp, scope="openid profile phone"))
    # sign in, stop at the consent page
    loc = resp.headers["Location"]
    page = client.get(loc)
    fields = form_fields(page.get_data(as_text=True))
    resp = client.post("/login", data={**fields, "username": CITIZEN_ID,
                                       "password": "Correct-Horse-9"})
    resp = client.get(resp.headers["Location"])
    assert urlsplit(resp.headers["Location"]).path == "/consent"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "您的手机号码" in page and "您的姓名" in page and "110105********002X" in page
    assert 'value="allow"' in page and 'value="deny"' in page
    fields = form_fields(page)
    resp = client.post("/consent", data={**fields, "consent": "allow"})
    resp = client.get(resp.headers["Location"])
    assert "code" in query(resp.headers["Location"])
    # Same scopes again: no consent page.
    resp = client.get(authorize_url(rp, scope="openid phone"))
    assert "code" in query(resp.headers["Location"])
    # prompt=consent asks again; prompt=none with prompt=consent is invalid.
    resp = client.get(authorize_url(rp, scope="openid phone", prompt="consent"))
    assert urlsplit(resp.headers["Location"]).path == "/consent"


def test_consent_denied_is_access_denied(client, person):
    rp = make_client("third")
    resp = follow_login(client, client.get(authorize_url(rp, state="s9")), consent="deny")
    q = query(resp.headers["Location"])
    assert q["error"] == "access_denied" and q["state"] == "s9"


def test_prompt_none_without_consent_is_consent_required(client, person):
    first = make_client("first", first_party=True)
    get_code(client, first)  # signed in now
    third = make_client("third")
    resp = client.get(authorize_url(third, prompt="none"))
    assert query(resp.headers["Location"])["error"] == "consent_required"


def test_idcard_scope_needs_registration_and_consent(client, person):
    plain = make_client("plain", first_party=True)
    body = tokens_for(client, plain, scope="openid idcard")
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert "id_number" not in info.get_json()
    assert "idcard" not in body["scope"].split()

    allowed = make_client("allowed", sensitive=["idcard"])
    resp = client.get(authorize_url(allowed, scope="openid idcard"))
    assert urlsplit(resp.headers["Location"]).path == "/consent"  # even though signed in
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "您的完整身份证号码" in page
    body = tokens_for(client, allowed, scope="openid idcard")
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.get_json()["id_number"] == CITIZEN_ID


def test_pending_request_is_bound_to_the_browser(ctx, person, rp):
    alice, mallory = ctx.test_client(), ctx.test_client()
    resp = alice.get(authorize_url(rp))
    login_url = resp.headers["Location"]
    assert mallory.get(login_url).status_code == 400


def test_login_form_requires_csrf_token(client, person, rp):
    resp = client.get(authorize_url(rp))
    fields = form_fields(client.get(resp.headers["Location"]).get_data(as_text=True))
    fields.pop("csrf_token")
    resp = client.post("/login", data={**fields, "username": CITIZEN_ID,
                                       "password": "Correct-Horse-9"})
    assert resp.status_code == 400
    assert "idp_sso" not in resp.headers.get("Set-Cookie", "")


def test_ui_locales_en_gives_english_pages(client, person, rp):
    resp = client.get(authorize_url(rp, ui_locales="en-US zh-CN"))
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'lang="en"' in page and "Password" in page


def test_login_hint_prefills_username(client, person, rp):
    resp = client.get(authorize_url(rp, login_hint="13912345678"))
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'value="13912345678"' in page


def test_tokens_after_resumed_request_carry_the_nonce(client, person, rp):
    code, _, verifier = get_code(client, rp, nonce="resumed-nonce")
    body = exchange(client, rp, code, verifier).get_json()
    from joserfc import jwt
    from joserfc.jwk import KeySet

    claims = jwt.decode(body["id_token"], KeySet.import_key_set(client.get("/jwks").get_json()),
                        algorithms=["ES256"]).claims
    assert claims["nonce"] == "resumed-nonce"


def test_unsigned_or_unknown_request_objects_are_refused_not_ignored(client, rp):
    # An unsigned request object (alg none) and a request_uri we never issued: refused on
    # the person's screen, since nothing in them can be trusted to redirect to (RFC 9101
    # §6.3; signed ones are tested in test_par_jar.py).
    for param, error in (("request", "invalid_request_object"),
                         ("request_uri", "invalid_request_uri")):
        resp = client.get(authorize_url(rp, **{param: "eyJhbGciOiJub25lIn0.e30."}))
        assert resp.status_code == 400 and error in resp.get_data(as_text=True)
