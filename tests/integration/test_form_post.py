"""``response_mode=form_post`` (OAuth 2.0 Form Post Response Mode) and ``form_post.jwt``
(JARM §2.3.3): the authorization response as a page whose form POSTs it to the client."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt

from tests.helpers import (
    REDIRECT,
    authorize_url,
    exchange,
    follow_login,
    make_client,
    pkce_pair,
)


def _page(resp) -> tuple[str, dict[str, str], str]:
    """The form's action, its fields, and the page's HTML."""
    assert resp.status_code == 200, (resp.status_code, resp.headers.get("Location"))
    assert resp.mimetype == "text/html"
    body = resp.get_data(as_text=True)
    action = html.unescape(re.search(r'<form id="oidc-form-post" method="post" action="([^"]*)"',
                                     body).group(1))
    fields = {html.unescape(k): html.unescape(v) for k, v in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body)}
    return action, fields, body


def test_form_post_delivers_the_code_in_an_auto_submitting_form(client, person, rp):
    verifier, challenge = pkce_pair()
    resp = follow_login(client, client.get(authorize_url(
        rp, response_mode="form_post", state="st-1", code_challenge=challenge,
        code_challenge_method="S256")))
    action, fields, body = _page(resp)
    assert action == REDIRECT
    assert set(fields) == {"code", "state", "iss"} and fields["state"] == "st-1"
    assert fields["iss"] == "http://localhost"
    # Submitted by a script file; without scripts, a visible button in <noscript>.
    assert re.search(r'<script src="/static/form_post\.js', body)
    noscript = re.search(r"<noscript>(.*?)</noscript>", body, re.S).group(1)
    assert '<button type="submit"' in noscript
    assert client.get("/static/form_post.js").status_code == 200
    # The CSP: scripts only from us, no inline code; the form may go to the client only.
    csp = resp.headers["Content-Security-Policy"]
    assert "form-action https://rp.example" in csp and "unsafe-inline" not in csp
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["Cache-Control"] == "no-store"
    assert exchange(client, rp, fields["code"], verifier).status_code == 200


def test_form_post_errors_and_refusals_are_posted_too(client, person, rp):
    # prompt=none without a session: the error is posted, not put in a query.
    resp = client.get(authorize_url(rp, response_mode="form_post", prompt="none", state="s2"))
    _action, fields, _ = _page(resp)
    assert fields["error"] == "login_required" and fields["state"] == "s2" and fields["iss"]
    # The person says no on the consent page: access_denied, posted.
    resp = follow_login(client, client.get(authorize_url(rp, response_mode="form_post",
                                                         state="s3")), consent="deny")
    _action, fields, _ = _page(resp)
    assert fields["error"] == "access_denied" and fields["state"] == "s3"


def test_the_sign_in_redirects_are_not_turned_into_forms(client, person, rp):
    resp = client.get(authorize_url(rp, response_mode="form_post"))
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"


def test_a_redirect_uri_with_its_own_query_keeps_it(client, person):
    rp = make_client("fp-query", redirect_uris=("https://rp.example/cb?tenant=7",))
    resp = follow_login(client, client.get(authorize_url(rp, response_mode="form_post")))
    action, fields, _ = _page(resp)
    assert action == "https://rp.example/cb?tenant=7"
    assert "tenant" not in fields and "code" in fields
    # In query mode as before: the registered query and ours side by side.
    resp = follow_login(client, client.get(authorize_url(rp)))
    q = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert q["tenant"] == ["7"] and q["code"]


def test_form_post_jwt_posts_a_signed_response(client, person, rp):
    from idp.oidc.tokens import keyring

    resp = follow_login(client, client.get(authorize_url(rp, response_mode="form_post.jwt",
                                                         state="s4")))
    action, fields, _ = _page(resp)
    assert action == REDIRECT and set(fields) == {"response"}
    claims = jwt.decode(fields["response"], keyring().public_keys(),
                        algorithms=keyring().algorithms()).claims
    assert claims["aud"] == rp.client_id and claims["iss"] == "http://localhost"
    assert claims["state"] == "s4" and claims["code"]


def test_the_page_speaks_english_when_asked(client, person, rp):
    resp = follow_login(client, client.get(authorize_url(rp, response_mode="form_post",
                                                         ui_locales="en")))
    _action, _fields, body = _page(resp)
    assert "Scripts are turned off in your browser" in body


def test_discovery_lists_exactly_the_supported_modes(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["response_modes_supported"] == [
        "query", "form_post", "jwt", "query.jwt", "fragment.jwt", "form_post.jwt"]
    # An unsupported mode (fragment: not for the code flow here) is refused, not ignored.
    rp = make_client("fp-modes")
    resp = client.get(authorize_url(rp, response_mode="fragment"))
    q = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert q["error"] == ["invalid_request"] and "response_mode" in q["error_description"][0]
