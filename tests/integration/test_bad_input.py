"""Hostile input gets a clean 4xx, never a 500, and no link on our pages leads to
another site (issue 10, items 4 and 7)."""

from __future__ import annotations

import base64
import html
import io
import re
from urllib.parse import quote, urlencode, urlsplit

import pytest
from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkSize

from idp.http_limits import MAX_JSON_DEPTH
from tests.helpers import REDIRECT, form_fields
from tests.integration.test_admin_console import _admin, _api_token, sign_in

HUGE = "9" * 25  # wider than any SQL integer type
ODD = ['"', "\\", "\x01", "\x7f", "é", "\r\n", "\x00", "统一"]


def _lang_link(page: str) -> str:
    found = re.search(r'<nav class="lang">\s*<a href="([^"]*)"', page)
    assert found, "no language link on the page"
    return html.unescape(found.group(1))


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _csrf(client) -> str:
    return form_fields(client.get("/login").get_data(as_text=True))["csrf_token"]


# -- item 4: the language link ---------------------------------------------------------

@pytest.mark.parametrize("raw", ["/%5Cevil.example/x", "/%5C%5Cevil.example", "/%09/evil.example",
                                 "/%0A/evil.example", "/%5C/evil.example"])
def test_language_link_of_a_404_never_leaves_the_site(client, raw):
    resp = client.get(raw + "?a=1")
    assert resp.status_code == 404
    assert _lang_link(resp.get_data(as_text=True)) == "/?a=1&lang=en"


@pytest.mark.parametrize("raw", ["/%2F/evil.example", "/%2F%2Fevil.example", "/.%2F/evil.example"])
def test_language_link_of_a_404_is_a_local_path(client, raw):
    link = _lang_link(client.get(raw).get_data(as_text=True))
    parts = urlsplit(link)
    assert link.startswith("/") and not link.startswith("//") and "\\" not in link
    assert not parts.scheme and not parts.netloc


def test_language_link_of_a_404_keeps_a_plain_path_and_its_query(client):
    resp = client.get("/no/such/page?x=1&x=2&lang=zh")
    assert resp.status_code == 404
    assert _lang_link(resp.get_data(as_text=True)) == "/no/such/page?x=1&x=2&lang=en"


def test_language_link_of_a_page_is_built_from_its_route(client):
    page = client.get("/login?next=%2Faccount%2F").get_data(as_text=True)
    assert _lang_link(page) == "/login?next=%2Faccount%2F&lang=en"


def test_language_link_of_an_english_page_leads_back_to_chinese(client):
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert _lang_link(page) == "/login?lang=zh"


# -- item 7: characters Authlib will not put in an error description --------------------

@pytest.mark.parametrize("odd", ODD)
@pytest.mark.parametrize("field", ["redirect_uri", "response_type"])
def test_authorize_with_odd_characters_is_a_400_page_not_a_redirect(client, rp, field, odd):
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": REDIRECT,
              "scope": "openid", "state": "s"}
    params[field] += odd
    resp = client.get("/authorize?" + urlencode(params))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    if odd != "\x00":  # NUL is refused before Authlib sees the request
        assert "invalid_request" in resp.get_data(as_text=True)


@pytest.mark.parametrize("odd", ODD)
@pytest.mark.parametrize("path", ["/token", "/device_authorization", "/bc-authorize",
                                  "/introspect", "/revoke"])
def test_oauth_endpoints_with_odd_characters_answer_json_errors(client, rp, path, odd):
    for field in ("client_id", "scope", "grant_type", "token", "login_hint"):
        data = {"client_id": rp.client_id, "client_secret": rp.secret, "scope": "openid",
                "grant_type": "authorization_code", "token": "t", "code": "c",
                "redirect_uri": REDIRECT, "login_hint": "13912345678"}
        data[field] += odd
        resp = client.post(path, data=data)
        assert 400 <= resp.status_code < 500, (field, resp.status_code, resp.data[:200])
        assert resp.get_json()["error"]


# -- item 7: deeply nested JSON ----------------------------------------------------------

JSON_PATHS = ["/qr/ticket", "/passkey/login/options", "/passkey/login/verify",
              "/login/step-up/passkey/options", "/login/step-up/passkey/verify"]


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 100_000])
@pytest.mark.parametrize("path", JSON_PATHS)
def test_deeply_nested_json_is_refused_with_a_json_400(client, path, levels):
    resp = client.post(path, data=_deep(levels), content_type="application/json",
                       headers={"X-CSRFToken": _csrf(client)})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"


def test_json_within_the_depth_limit_still_reaches_the_view(client):
    nested: list = []
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = [nested]
    resp = client.post("/qr/ticket", json={"rid": "nope", "extra": nested},
                       headers={"X-CSRFToken": _csrf(client)})
    assert "nested" not in resp.get_data(as_text=True)


def test_json_with_a_lone_surrogate_is_refused(client):
    resp = client.post("/qr/ticket", data='{"rid": "\\ud800"}', content_type="application/json",
                       headers={"X-CSRFToken": _csrf(client)})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"


@pytest.fixture
def admin_client(client, ctx):
    sign_in(client, ctx, _admin())
    return client


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 100_000])
def test_admin_api_refuses_deeply_nested_json(admin_client, levels):
    resp = admin_client.post("/admin/api/review/1/approve", data=_deep(levels),
                             content_type="application/json", headers=_api_token(admin_client))
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"


# -- item 7: over-large integers in the admin API and console ---------------------------

@pytest.mark.parametrize("query", [f"page={HUGE}", f"per_page={HUGE}", "page=9999999999999999",
                                   "page=%D9%A3", "page=-1", "page=1e9", f"page={'9' * 5000}"])
def test_admin_api_list_refuses_out_of_range_numbers(admin_client, query):
    resp = admin_client.get("/admin/api/review?" + query)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("method,path", [
    ("get", f"/admin/api/review/{HUGE}"), ("get", "/admin/api/review/2147483648"),
    ("post", f"/admin/api/review/{HUGE}/approve"), ("post", f"/admin/api/review/{HUGE}/undo")])
def test_admin_api_paths_with_huge_ids_are_json_404s(admin_client, method, path):
    resp = getattr(admin_client, method)(path, json={}, headers=_api_token(admin_client))
    assert resp.status_code == 404
    assert resp.get_json()["error"]


def test_admin_console_pages_with_huge_numbers(admin_client):
    assert admin_client.get(f"/admin/review/{HUGE}").status_code == 404
    assert admin_client.get(f"/admin/review?page={HUGE}").status_code == 200
    token = _api_token(admin_client)["X-CSRFToken"]
    for path in (f"/admin/merges/{HUGE}/undo", f"/admin/review/{HUGE}/approve",
                 f"/admin/review/{HUGE}/search"):
        assert admin_client.post(path, data={"csrf_token": token}).status_code == 404


# -- item 7: a body the server cannot read ------------------------------------------------

class _BrokenChunks(io.RawIOBase):
    """``wsgi.input`` as gunicorn hands it over for a malformed chunked body."""

    def __init__(self, error: Exception):
        self.error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise self.error


@pytest.mark.parametrize("error", [InvalidChunkSize(b"zz"), ChunkMissingTerminator(b"xx"),
                                   OSError("connection reset")])
def test_malformed_chunked_body_on_token_is_an_oauth_400(client, error):
    resp = client.post("/token", content_type="application/x-www-form-urlencoded",
                       headers={"Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input": _BrokenChunks(error),
                                          "wsgi.input_terminated": True})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"


def test_unreadable_json_body_is_a_400(client):
    resp = client.post("/passkey/login/options", content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input": _BrokenChunks(InvalidChunkSize(b"q")),
                                          "wsgi.input_terminated": True})
    assert resp.status_code == 400


# -- trying to break it: odd values everywhere --------------------------------------------

FUZZ = ["%00", "%0D%0A", "%ED%A0%80", "%FF%FE", "%5C", "%22%3E%3Cx%3E", "A" * 5000,
        "%C0%AF", "9" * 30, "-1", "%25", "%E2%80%AE"]
GET_PATHS = ["/authorize", "/userinfo", "/logout", "/login", "/login/sms", "/consent", "/device",
             "/qr/status/x", "/.well-known/openid-configuration", "/jwks.json", "/login/more",
             "/login/step-up", "/account/", "/admin/review", "/admin/api/review",
             "/register", "/recover", "/login/qr"]
FORM_PATHS = ["/token", "/login", "/login/sms", "/consent", "/device", "/logout", "/qr/complete",
              "/bc-authorize", "/device_authorization", "/introspect", "/revoke", "/authorize"]
FIELDS = ["client_id", "redirect_uri", "response_type", "scope", "state", "next", "rid",
          "username", "password", "phone", "user_code", "id_token_hint", "grant_type",
          "login_hint", "prompt", "max_age", "acr_values", "ui_locales", "claims", "lang",
          "post_logout_redirect_uri", "code", "code_verifier", "refresh_token"]


def _fuzz_query(value: str) -> str:
    return "&".join(f"{f}={value}" for f in FIELDS) + f"&client_id={value}&scope=openid"


def _no_5xx(resp, what):
    assert resp.status_code < 500, (what, resp.status_code, resp.data[:300])


@pytest.mark.parametrize("value", FUZZ)
@pytest.mark.parametrize("path", GET_PATHS)
def test_fuzzed_query_strings_never_500(client, rp, path, value):
    _no_5xx(client.get(path + "?" + _fuzz_query(value)), path)


@pytest.mark.parametrize("value", FUZZ)
@pytest.mark.parametrize("path", FORM_PATHS)
def test_fuzzed_form_posts_never_500(client, rp, path, value):
    token = _csrf(client)
    body = f"csrf_token={quote(token)}&" + _fuzz_query(value)
    _no_5xx(client.post(path, data=body, content_type="application/x-www-form-urlencoded"),
            path)


@pytest.mark.parametrize("body", [
    "{", "null", "[]", '"x"', "1e999999", "9" * 5000, '{"rid": {"$gt": ""}}', '{"rid": 1}',
    '{"rid": null}', '{"rid": "\\ud800"}', '{"credential": [1, 2]}', '{"id": {"a": 1}}',
    '{"rid": "x", "rid": "y"}', '{"name": "' + "A" * 100_000 + '"}'])
@pytest.mark.parametrize("path", JSON_PATHS)
def test_fuzzed_json_bodies_never_500(client, path, body):
    resp = client.post(path, data=body, content_type="application/json",
                       headers={"X-CSRFToken": _csrf(client)})
    _no_5xx(resp, path)


@pytest.mark.parametrize("header,value", [
    ("Authorization", "Bearer \x00"), ("Authorization", "Basic %%%"),
    ("Authorization", "Basic " + "A" * 10_000), ("Authorization", "Basic Og=="),
    ("Authorization", "Basic 8J+Ygg=="), ("Authorization", "Bearer " + "é"),
    ("Accept-Language", "\x7f;q=abc"), ("Cookie", "idp_sso=%ED%A0%80"),
    ("X-Forwarded-For", "::::"), ("Content-Type", "application/x-www-form-urlencoded; charset=x")])
@pytest.mark.parametrize("path", ["/token", "/userinfo", "/introspect", "/login", "/authorize"])
def test_fuzzed_headers_never_500(client, rp, path, header, value):
    _no_5xx(client.post(path, data={"grant_type": "client_credentials"},
                        headers={header: value}), path)
    _no_5xx(client.get(path, headers={header: value}), path)


def test_repeated_parameters_never_500(client, rp):
    for path in ("/authorize", "/token", "/login", "/logout", "/device_authorization"):
        query = "client_id=rp1&client_id=rp2&scope=openid&scope=x&response_type=code" \
                "&response_type=token&redirect_uri=a&redirect_uri=b"
        _no_5xx(client.get(path + "?" + query), path)
        _no_5xx(client.post(path, data=query, content_type="application/x-www-form-urlencoded"),
                path)


def test_over_large_body_is_a_413(client):
    resp = client.post("/token", data="a=" + "b" * (5 * 1024 * 1024),
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 413


@pytest.mark.parametrize("path", ["/qr/status/a%00b", "/qr/s/%00", "/no/such%00page",
                                  "/account/passkeys/%00/remove"])
def test_nul_in_a_path_never_500(client, path):
    _no_5xx(client.get(path), path)
    _no_5xx(client.post(path, data={"csrf_token": _csrf(client)}), path)


def test_nul_in_a_client_id_is_a_400_before_any_lookup(client, rp):
    resp = client.post("/token", data={"grant_type": "client_credentials",
                                       "client_id": "rp1\x00", "client_secret": "x"})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_request"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("iss", ['"\\ud800"', '"rp1\\u0000"', "1", "[1]", '{"a": 1}'])
@pytest.mark.parametrize("grant", ["assertion", "client_assertion"])
def test_jwt_claims_that_cannot_be_looked_up_never_500(client, rp, iss, grant):
    token = _b64('{"alg":"ES256","kid":"k"}') + "." + _b64('{"iss":' + iss + ',"sub":' + iss
                                                          + ',"aud":"x","exp":1}') + ".AAAA"
    data = {"client_assertion": {
        "grant_type": "client_credentials", "client_assertion": token,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
        "assertion": {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                      "assertion": token, "client_id": rp.client_id,
                      "client_secret": rp.secret}}[grant]
    resp = client.post("/token", data=data)
    assert 400 <= resp.status_code < 500, resp.data[:300]
    assert resp.get_json()["error"]
