"""Apache ``mod_auth_mellon`` as the SAML 2.0 service provider, the provider as its IdP:
SP-initiated sign-in through the login form (headless Chromium, and a plain HTTP
client), attributes as mellon passes them on, the Response's signature checked by
mellon against /saml/metadata, a replayed or altered Response refused by it, and single
logout in both directions (mellon's own logout, and the provider's logout reaching
mellon over SOAP). Nothing of the provider is imported."""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from .apache_mellon import Mellon
from .browser import fill_login, open_context
from .conftest import LiveIdP, provider, running

pytestmark = pytest.mark.browser

CITIZEN_ID = "11010519491231002X"
CITIZEN_PASSWORD = "E2e-Password-2026"
FIELDS = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[LiveIdP, Mellon]]:
    with provider(tmp_path_factory, "saml-mellon-idp", span=2) as idp:
        idp.run_cli("init")
        idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "王五",
                    "--password", CITIZEN_PASSWORD, "--phone", "13912345678")
        # Not under pytest's private temporary directory: Apache's children run as nobody
        # when the tests run as root, and must read the metadata and keys.
        root = Path(tempfile.mkdtemp(prefix="idp-mellon-"))
        root.chmod(0o755)
        try:
            with running(idp):
                metadata = requests.get(idp.base_url + "/saml/metadata", timeout=10)
                assert metadata.headers["Content-Type"].startswith("application/samlmetadata+xml")
                mellon = Mellon(root, port=idp.port + 1, idp_metadata=metadata.text)
                out = idp.run_cli("client", "add", "--client-id", "mellon", "--protocol", "saml",
                                  "--name", "不动产登记网（SAML）", "--first-party",
                                  "--metadata", str(mellon.metadata_file), "--json")
                assert out["authn_requests_signed"] is True and out["encrypted_assertions"]
                mellon.start()
                try:
                    yield idp, mellon
                finally:
                    mellon.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _response_for(idp: LiveIdP, mellon: Mellon) -> tuple[requests.Session, str, dict]:
    """Sign in with a plain HTTP client up to the IdP's page that posts the Response to
    mellon: (the browser, the form's action, its fields), not posted yet."""
    b = requests.Session()
    loc = mellon.base + "/protected/page"
    while loc.startswith(mellon.base):  # mellon's /mellon/login sets its cookie, then sends
        resp = b.get(loc, allow_redirects=False, timeout=20)
        assert resp.status_code in (302, 303), resp.text[:300]
        loc = resp.headers["Location"]
    assert loc.startswith(idp.base_url + "/saml/sso?SAMLRequest=") and "Signature=" in loc
    for _ in range(8):
        resp = b.get(loc, allow_redirects=False, timeout=20)
        if resp.status_code != 302:
            break
        loc = resp.headers["Location"]
        loc = loc if loc.startswith("http") else idp.base_url + loc
        if urlsplit(loc).path == "/login":
            page = b.get(loc, timeout=20)
            resp = b.post(idp.base_url + "/login", allow_redirects=False, timeout=20,
                          data={**dict(FIELDS.findall(page.text)), "username": CITIZEN_ID,
                                "password": CITIZEN_PASSWORD})
            loc = idp.base_url + resp.headers["Location"] if resp.headers["Location"] \
                .startswith("/") else resp.headers["Location"]
    assert resp.status_code == 200 and 'id="saml-post"' in resp.text, resp.text[:500]
    action = re.search(r'<form id="saml-post" method="post" action="([^"]+)"', resp.text)[1]
    return b, action, dict(FIELDS.findall(resp.text))


def _post(action: str, fields: dict, session: requests.Session | None = None):
    b = session or requests.Session()
    resp = b.post(action, data=fields, allow_redirects=False, timeout=20)
    if resp.status_code in (302, 303):
        return b, b.get(resp.headers["Location"], allow_redirects=False, timeout=20)
    return b, resp


def _fresh_browser(mellon: Mellon) -> requests.Session:
    """Another browser that has been to mellon (so it holds mellon's cookie-test cookie
    and a refusal is about the Response, not about a missing cookie)."""
    b = requests.Session()
    resp = b.get(mellon.base + "/mellon/login?ReturnTo=" + quote(mellon.base + "/protected/page"),
                 allow_redirects=False, timeout=20)
    assert "mellon-cookie" in resp.headers.get("Set-Cookie", "")
    return b


def _signed_in(resp: requests.Response) -> bool:
    return resp.status_code == 200 and "MELLON_name=" in resp.text


def test_mellon_signs_in_through_the_login_form(site, browser):
    idp, mellon = site
    with open_context(browser) as ctx:
        page = ctx.new_page()
        page.goto(mellon.base + "/protected/page")
        page.wait_for_url(idp.base_url + "/login?**")
        expect(page.locator("main")).to_contain_text("不动产登记网（SAML）")
        fill_login(page, CITIZEN_ID, CITIZEN_PASSWORD)
        page.wait_for_url(mellon.base + "/protected/page")  # the POST form submitted itself
        body = page.locator("body").inner_text()
    assert "MELLON_name=王五" in body and "MELLON_acr=L2" in body
    assert "MELLON_channel=web" in body
    masked = re.search(r"MELLON_id_number_masked=(\S+)", body)[1]
    assert masked.startswith("110105") and "*" in masked and CITIZEN_ID not in body
    user = re.search(r"REMOTE_USER=(\S+)", body)[1]
    assert user and CITIZEN_ID not in user  # a NameID (mellon asks transient), never the number


def test_mellon_checks_the_signature_and_refuses_an_altered_response(site):
    idp, mellon = site
    _b, action, fields = _response_for(idp, mellon)
    xml = base64.b64decode(fields["SAMLResponse"])
    assert b"EncryptedAssertion" in xml  # encrypted for mellon's key
    value = re.search(rb"<(\w+:)?CipherValue>([^<]{40})", xml)
    flipped = value[2][:-1] + (b"A" if value[2][-1:] != b"A" else b"B")
    altered = xml.replace(value[2], flipped, 1)
    before = len(mellon.log())
    _b2, resp = _post(action, {**fields, "SAMLResponse": base64.b64encode(altered).decode()},
                      session=_b)
    assert not _signed_in(resp) and resp.status_code >= 400
    assert "Could not decrypt" in mellon.log()[before:]
    # a signed field of the Response changed (its ID, which nothing but the signature
    # covers): refused for the signature
    rid = re.search(rb'<(?:\w+:)?Response [^>]*?ID="([^"]+)"', xml)[1]
    forged = xml.replace(b'ID="' + rid + b'"', b'ID="' + rid[:-1] + b'x"', 1) \
        .replace(b'URI="#' + rid + b'"', b'URI="#' + rid[:-1] + b'x"', 1)
    before = len(mellon.log())
    _b2, resp = _post(action, {**fields, "SAMLResponse": base64.b64encode(forged).decode()},
                      session=_b)
    assert not _signed_in(resp) and resp.status_code >= 400
    assert "signature" in mellon.log()[before:].lower()
    # the genuine one still works (the refusal was the alteration, not the message)
    _b3, resp = _post(action, fields, session=_b)
    assert _signed_in(resp)


def test_mellon_refuses_a_replayed_response(site):
    idp, mellon = site
    _b, action, fields = _response_for(idp, mellon)
    _first, resp = _post(action, fields, session=_b)
    assert _signed_in(resp)
    before = len(mellon.log())
    # the same Response again, from another browser that has been to mellon
    _again, resp = _post(action, fields, session=_fresh_browser(mellon))
    assert not _signed_in(resp) and resp.status_code >= 400
    assert "has already been used" in mellon.log()[before:]


def test_idp_logout_reaches_mellon_over_soap(site):
    idp, mellon = site
    b, action, fields = _response_for(idp, mellon)
    _b, resp = _post(action, fields, session=b)
    assert _signed_in(resp)
    page = b.get(idp.base_url + "/logout", timeout=20)
    resp = b.post(idp.base_url + "/logout", data=dict(FIELDS.findall(page.text)), timeout=20)
    assert "您已安全退出" in resp.text
    deadline = time.monotonic() + 15
    while True:
        resp = b.get(mellon.base + "/protected/page", allow_redirects=False, timeout=20)
        if resp.status_code in (302, 303):
            break  # mellon's session is gone: it sends the browser to sign in again
        assert time.monotonic() < deadline, "mellon kept its session after logout"
        time.sleep(0.2)
    assert resp.headers["Location"].startswith(mellon.base + "/mellon/login?")


def test_mellon_logout_ends_the_provider_session(site):
    idp, mellon = site
    b, action, fields = _response_for(idp, mellon)
    _b, resp = _post(action, fields, session=b)
    assert _signed_in(resp)
    assert b.get(idp.base_url + "/", timeout=20).status_code == 200
    resp = b.get(mellon.base + "/mellon/logout?ReturnTo=" + quote(mellon.base + "/bye"),
                 allow_redirects=False, timeout=20)
    loc = resp.headers["Location"]
    assert loc.startswith(idp.base_url + "/saml/slo?SAMLRequest=") and "Signature=" in loc
    resp = b.get(loc, allow_redirects=False, timeout=20)  # our signed LogoutResponse back
    assert resp.status_code == 302
    back = resp.headers["Location"]
    assert back.startswith(mellon.base + "/mellon/logout?SAMLResponse=") and "Signature=" in back
    resp = b.get(back, allow_redirects=False, timeout=20)
    assert resp.status_code in (302, 303) and resp.headers["Location"] == mellon.base + "/bye"
    # signed out at the provider too: the next SAML sign-in asks for the password
    loc = mellon.base + "/protected/page"
    while not loc.startswith(idp.base_url):
        loc = b.get(loc, allow_redirects=False, timeout=20).headers["Location"]
    resp = b.get(loc, allow_redirects=False, timeout=20)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
