"""SAML 2.0 identity provider: a pysaml2 service provider signs in through the login
form and checks what it gets the way an SP does (signature, audience, InResponseTo,
decryption); negative paths for signing, signature wrapping, unknown SPs."""

from __future__ import annotations

import base64
import re

import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from idp.saml.registry import register_sp
from tests.helpers import CITIZEN_ID, CITIZEN_PASSWORD, form_fields, make_person
from tests.saml.sp import make_sp


def _idp_metadata(client) -> str:
    resp = client.get("/saml/metadata")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


@pytest.fixture
def sp(client, tmp_path):
    sp = make_sp(str(tmp_path), _idp_metadata(client))
    register_sp(sp.metadata(), client_id="sp1", name="测试 SAML 网站", first_party=True)
    return sp


@pytest.fixture(autouse=True)
def _fresh_sp_cache():
    # Tables are emptied between tests; the few-seconds entity-ID cache is not.
    from idp.saml import registry

    registry._by_entity.clear()


def test_metadata_by_url_is_fetched_once_with_no_redirect_and_a_size_cap(client, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from idp.saml.metadata_import import MAX_BYTES, MetadataError
    from idp.saml.registry import fetch_metadata

    xml = make_sp(str(tmp_path), _idp_metadata(client)).metadata()
    if isinstance(xml, str):
        xml = xml.encode()

    class Site(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:9/md")
                self.end_headers()
                return
            body = xml if self.path == "/md" else b"<x>" + b" " * MAX_BYTES + b"</x>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        row = register_sp(fetch_metadata(base + "/md"), client_id="by-url", first_party=True)
        assert row.protocol == "saml"
        with pytest.raises(MetadataError, match="HTTP 302"):
            fetch_metadata(base + "/moved")
        with pytest.raises(MetadataError, match="larger than"):
            fetch_metadata(base + "/huge")
        with pytest.raises(MetadataError, match="https"):
            fetch_metadata(f"http://example.com:{server.server_port}/md")
    finally:
        server.shutdown()
        server.server_close()


def _sign_in(client, resp, consent="allow"):
    """Follow the interaction from an SSO response to the page that posts to the SP."""
    for _ in range(6):
        if resp.status_code != 302:
            return resp
        loc = resp.headers["Location"]
        if loc.startswith("/login") or "/login?" in loc:
            page = client.get(loc)
            fields = form_fields(page.get_data(as_text=True))
            resp = client.post("/login", data={**fields, "username": CITIZEN_ID,
                                               "password": CITIZEN_PASSWORD})
        elif "/consent" in loc:
            page = client.get(loc)
            fields = form_fields(page.get_data(as_text=True))
            resp = client.post("/consent", data={**fields, "consent": consent})
        else:
            resp = client.get(loc)
    return resp


def _posted(resp) -> dict[str, str]:
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html[:400]
    action = re.search(r'<form id="saml-post" method="post" action="([^"]+)"', html).group(1)
    return {"action": action, **form_fields(html)}


def test_sp_initiated_redirect_binding(client, sp):
    make_person()
    req_id, info = sp.authn_request(BINDING_HTTP_REDIRECT)
    posted = _posted(_sign_in(client, client.get(info["url"])))
    assert posted["action"] == sp.acs
    assert posted["RelayState"] == "rs-1"
    response = sp.parse(posted["SAMLResponse"], {req_id: "/"})
    ava = response.ava
    assert ava["name"] == ["李四"]
    assert ava["id_number_masked"][0].startswith("110105")
    assert "id_number" not in ava


# -- helpers ---------------------------------------------------------------------------

def _signed_in(client):
    """Sign this browser in (a first SAML sign-in), so SSO and logout can be tested."""
    from tests.helpers import CITIZEN_ID as _id

    page = client.get("/login")
    fields = form_fields(page.get_data(as_text=True))
    resp = client.post("/login", data={**fields, "username": _id, "password": CITIZEN_PASSWORD})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]


def _xml(posted) -> bytes:
    return base64.b64decode(posted["SAMLResponse"])


def _status(posted) -> list[str]:
    return re.findall(rb'StatusCode Value="([^"]+)"', _xml(posted))


def _sso(client, sp, **kwargs):
    req_id, info = sp.authn_request(BINDING_HTTP_REDIRECT, **kwargs)
    return req_id, client.get(info["url"])


# -- single sign-on --------------------------------------------------------------------

def test_post_binding_signed_request_and_plain_assertion_for_sp_without_encryption_key(
        client, tmp_path):
    make_person()
    sp = make_sp(str(tmp_path), _idp_metadata(client), entity_id="https://plain.example/sp",
                 acs="https://plain.example/sp/acs", sign_requests=True, encrypt=False)
    row = register_sp(sp.metadata(), client_id="plain", first_party=True)
    assert row.meta("saml_authn_requests_signed") is True
    assert row.meta("saml_encryption_certs") == []
    req_id, info = sp.authn_request(BINDING_HTTP_POST, sign=True)
    resp = client.post("/saml/sso", data=info["data"])
    assert "saml-post" in resp.get_data(as_text=True)  # cookieless cross-site POST: reposted
    resp = client.post("/saml/sso", data={**info["data"], "_repost": "1"})
    posted = _posted(_sign_in(client, resp))
    xml = _xml(posted)
    assert b"EncryptedAssertion" not in xml
    assert len(re.findall(rb"<\w+:SignatureValue>", xml)) == 2  # the Response and its assertion
    assert b'SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"' in xml
    response = sp.parse(posted["SAMLResponse"], {req_id: "/"})
    assert response.ava["name"] == ["李四"]


def test_encrypted_assertion_for_sp_with_encryption_key(client, sp):
    make_person()
    req_id, resp = _sso(client, sp)
    posted = _posted(_sign_in(client, resp))
    assert b"EncryptedAssertion" in _xml(posted)
    assert "李四".encode() not in _xml(posted)  # attributes travel encrypted
    assert sp.parse(posted["SAMLResponse"], {req_id: "/"}).ava["acr"] == ["L2"]


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_unsigned_request_from_sp_that_must_sign_is_refused(client, tmp_path, binding):
    make_person()
    sp = make_sp(str(tmp_path), _idp_metadata(client), sign_requests=True)
    register_sp(sp.metadata(), client_id="signer", first_party=True)
    _id, info = sp.authn_request(binding, sign=False)
    resp = (client.get(info["url"]) if binding == BINDING_HTTP_REDIRECT
            else client.post("/saml/sso", data={**info["data"], "_repost": "1"}))
    assert resp.status_code == 400
    assert "Location" not in resp.headers and "SAMLResponse" not in resp.get_data(as_text=True)
    assert "未签名" in resp.get_data(as_text=True)


def test_redirect_signature_over_altered_relay_state_is_refused(client, tmp_path):
    sp = make_sp(str(tmp_path), _idp_metadata(client), sign_requests=True)
    register_sp(sp.metadata(), client_id="signer", first_party=True)
    _id, info = sp.authn_request(BINDING_HTTP_REDIRECT, sign=True, relay_state="good")
    assert "RelayState=good" in info["url"]
    resp = client.get(info["url"].replace("RelayState=good", "RelayState=evil"))
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_unknown_sp_gets_a_page_never_a_redirect(client, tmp_path):
    sp = make_sp(str(tmp_path), _idp_metadata(client))  # not registered
    _id, resp = _sso(client, sp)
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert "未注册的服务提供方" in resp.get_data(as_text=True)
    assert sp.acs not in resp.get_data(as_text=True)


def test_assertion_consumer_not_in_metadata_is_refused(client, sp):
    _id, resp = _sso(client, sp, assertion_consumer_service_url="https://evil.example/acs")
    assert resp.status_code == 400 and "evil.example" not in resp.get_data(as_text=True)


@pytest.mark.parametrize("garbage", ["%%%", "bm90IGRlZmxhdGU=", "eHh4eHh4eHh4eA=="])
def test_unreadable_request_is_a_400_page(client, garbage):
    resp = client.get("/saml/sso", query_string={"SAMLRequest": garbage})
    assert resp.status_code == 400


def test_is_passive_without_session_answers_no_passive(client, sp):
    req_id, resp = _sso(client, sp, is_passive="true")
    posted = _posted(resp)
    assert posted["action"] == sp.acs
    assert b"urn:oasis:names:tc:SAML:2.0:status:NoPassive" in _status(posted)


def test_is_passive_with_session_signs_in_silently(client, sp):
    make_person()
    _signed_in(client)
    req_id, resp = _sso(client, sp, is_passive="true")
    assert sp.parse(_posted(resp)["SAMLResponse"], {req_id: "/"}).ava["name"] == ["李四"]


def test_force_authn_asks_for_a_password_despite_the_session(client, sp):
    make_person()
    _signed_in(client)
    _id, resp = _sso(client, sp, force_authn="true")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_requested_authn_context_l3_steps_up(client, sp):
    from saml2.saml import AuthnContextClassRef
    from saml2.samlp import RequestedAuthnContext

    make_person()
    _signed_in(client)
    ctx = RequestedAuthnContext(authn_context_class_ref=[AuthnContextClassRef(text="L3")],
                                comparison="minimum")
    _id, resp = _sso(client, sp, requested_authn_context=ctx)
    assert resp.status_code == 302 and "step-up" in resp.headers["Location"].replace("_", "-")


def test_unsupported_exact_authn_context_answers_no_authn_context(client, sp):
    from saml2.saml import AuthnContextClassRef
    from saml2.samlp import RequestedAuthnContext

    ctx = RequestedAuthnContext(authn_context_class_ref=[
        AuthnContextClassRef(text="urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos")],
        comparison="exact")
    _id, resp = _sso(client, sp, requested_authn_context=ctx)
    assert b"urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext" in _status(_posted(resp))


# -- NameID and attributes ----------------------------------------------------------------

def _name_id(client, sp, **kwargs):
    req_id, resp = _sso(client, sp, **kwargs)
    return sp.parse(_posted(_sign_in(client, resp))["SAMLResponse"], {req_id: "/"}).name_id


def test_persistent_name_id_is_pairwise_per_sp_and_stable(client, sp, tmp_path):
    from saml2.saml import NAMEID_FORMAT_PERSISTENT

    person = make_person()
    (tmp_path / "o").mkdir()
    other = make_sp(str(tmp_path / "o"), _idp_metadata(client),
                    entity_id="https://other.example/sp", acs="https://other.example/sp/acs")
    register_sp(other.metadata(), client_id="other", first_party=True)
    first = _name_id(client, sp)
    assert first.format == NAMEID_FORMAT_PERSISTENT
    assert first.text != person.id and first.sp_name_qualifier == sp.entity_id
    assert _name_id(client, sp).text == first.text
    assert _name_id(client, other).text not in (first.text, person.id)


def test_transient_name_id_changes_every_time(client, sp):
    from saml2.saml import NAMEID_FORMAT_TRANSIENT
    from saml2.samlp import NameIDPolicy

    make_person()
    policy = NameIDPolicy(format=NAMEID_FORMAT_TRANSIENT, allow_create="true")
    a = _name_id(client, sp, name_id_policy=policy)
    b = _name_id(client, sp, name_id_policy=policy)
    assert a.format == NAMEID_FORMAT_TRANSIENT and a.text != b.text


def test_unsupported_name_id_format_answers_invalid_policy(client, sp):
    from saml2.samlp import NameIDPolicy

    policy = NameIDPolicy(format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
    _id, resp = _sso(client, sp, name_id_policy=policy)
    assert b"urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy" in _status(_posted(resp))


def test_full_id_number_only_for_sp_allowed_idcard_after_consent(client, tmp_path):
    make_person()
    md = _idp_metadata(client)
    sp = make_sp(str(tmp_path), md, entity_id="https://id.example/sp", acs="https://id.example/sp/acs")
    register_sp(sp.metadata(), client_id="idsp", sensitive_scopes=["idcard"])  # not first party
    req_id, resp = _sso(client, sp)
    resp = _sign_in(client, resp)  # passes the consent page
    ava = sp.parse(_posted(resp)["SAMLResponse"], {req_id: "/"}).ava
    assert ava["id_number"] == [CITIZEN_ID]


def test_consent_refused_answers_request_denied(client, tmp_path):
    make_person()
    sp = make_sp(str(tmp_path), _idp_metadata(client))
    register_sp(sp.metadata(), client_id="third")  # third party: consent asked
    _id, resp = _sso(client, sp)
    resp = _sign_in(client, resp, consent="deny")
    assert b"urn:oasis:names:tc:SAML:2.0:status:RequestDenied" in _status(_posted(resp))


def test_idp_initiated_sign_in(client, sp):
    make_person()
    resp = _sign_in(client, client.get("/saml/init", query_string={"sp": sp.entity_id,
                                                                    "RelayState": "/welcome"}))
    posted = _posted(resp)
    assert posted["RelayState"] == "/welcome"
    response = sp.parse(posted["SAMLResponse"], None)
    assert response.in_response_to is None and response.ava["name"] == ["李四"]


def test_idp_initiated_for_unknown_sp_is_a_404_page(client):
    resp = client.get("/saml/init", query_string={"sp": "https://nobody.example/"})
    assert resp.status_code == 404 and "Location" not in resp.headers


def test_audit_entry_masks_personal_data(client, sp):
    from idp.audit.models import AuditEvent, AuditPending
    from idp.extensions import db

    person = make_person()
    req_id, resp = _sso(client, sp)
    _posted(_sign_in(client, resp))
    rows = [r for model in (AuditEvent, AuditPending) for r in db.session.scalars(
        db.select(model).where(model.event == "saml.assertion"))]
    assert len(rows) == 1
    row = rows[0]
    assert row.client_id == "sp1" and row.subject == person.id
    assert {"name", "id_number_masked", "acr"} <= set(row.details["attributes"])
    assert CITIZEN_ID not in str(row.details) and "李四" not in str(row.details)


# -- single logout ----------------------------------------------------------------------

def _idp_cert_b64(client) -> list[str]:
    md = _idp_metadata(client)
    return list(dict.fromkeys("".join(c.split()) for c in
                              re.findall(r"<ns\d:X509Certificate>([^<]+)<", md)))


def _logout_url(sp, nid, *, sign=True) -> str:
    from saml2.xmldsig import SIG_RSA_SHA256

    dest = "http://localhost/saml/slo"
    _id, req = sp.client.create_logout_request(dest, "http://localhost/saml/metadata",
                                               name_id=nid, sign=False)
    info = sp.client.apply_binding(BINDING_HTTP_REDIRECT, str(req), dest, "rs-out",
                                   sign=sign, sigalg=SIG_RSA_SHA256 if sign else None)
    return dict(info["headers"])["Location"]


def _still_signed_in(client, sp) -> bool:
    _id, resp = _sso(client, sp, is_passive="true")
    return b"NoPassive" not in b"".join(_status(_posted(resp)))


def test_sp_initiated_logout_ends_the_session_and_answers_signed(client, sp):
    from urllib.parse import urlsplit

    from idp.saml.signatures import redirect_signature_ok

    make_person()
    nid = _name_id(client, sp)
    assert _still_signed_in(client, sp)
    resp = client.get(_logout_url(sp, nid))
    assert resp.status_code == 302
    back = urlsplit(resp.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == sp.entity_id + "/slo"
    assert redirect_signature_ok(back.query.encode(), "SAMLResponse", _idp_cert_b64(client))
    saml_response = dict(p.split("=", 1) for p in back.query.split("&"))["SAMLResponse"]
    from urllib.parse import unquote

    parsed = sp.client.parse_logout_request_response(unquote(saml_response),
                                                     BINDING_HTTP_REDIRECT)
    assert parsed.response.status.status_code.value == "urn:oasis:names:tc:SAML:2.0:status:Success"
    assert not _still_signed_in(client, sp)


def test_unsigned_logout_request_is_refused_and_the_session_stays(client, sp):
    make_person()
    nid = _name_id(client, sp)
    resp = client.get(_logout_url(sp, nid, sign=False))
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert _still_signed_in(client, sp)


def test_logout_request_for_someone_else_leaves_the_session(client, sp):
    from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID

    make_person()
    _name_id(client, sp)
    other = NameID(format=NAMEID_FORMAT_PERSISTENT, text="somebody-else")
    resp = client.get(_logout_url(sp, other))
    assert resp.status_code == 302 and _still_signed_in(client, sp)


def test_logout_elsewhere_sends_the_sp_a_signed_soap_logout_request(client, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from saml2 import BINDING_SOAP

    from idp import single_logout
    from idp.authn import session as sso

    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            body = b'<Envelope><samlp:StatusCode xmlns:samlp="p" ' \
                   b'Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></Envelope>'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/sp"
        sp = make_sp(str(tmp_path), _idp_metadata(client), entity_id=base, acs=base + "/acs")
        register_sp(sp.metadata(), client_id="soap-sp", first_party=True)
        person = make_person()
        nid = _name_id(client, sp)
        futures = []
        for sess in sso.sessions_of(person.id):
            futures += single_logout.end_session(sess, reason="test")
        assert [f.result(timeout=30) for f in futures] == [True]
    finally:
        server.shutdown()
    request = sp.client.parse_logout_request(received[0].decode(), BINDING_SOAP)
    assert request.message.name_id.text == nid.text
    assert request.message.signature is not None  # pysaml2 checked it against our metadata


def test_signed_in_on_a_saml_site_oidc_and_cas_sites_need_no_password(client, sp):
    """SAML first: the session its sign-in made serves an OpenID Connect site and a CAS
    service without the login page (the other directions are tested in test_cas.py and
    tests/e2e/test_cross_protocol.py)."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    from tests.helpers import authorize_url, make_client, query

    make_person()
    req_id, info = sp.authn_request(BINDING_HTTP_REDIRECT)
    posted = _posted(_sign_in(client, client.get(info["url"])))
    assert sp.parse(posted["SAMLResponse"], {req_id: "/"}).ava["name"] == ["李四"]

    rp = make_client("oidc-after-saml", first_party=True)
    resp = client.get(authorize_url(rp))
    assert resp.status_code == 302 and "code" in query(resp.headers["Location"])

    from idp.clients import register_client

    service = "https://portal.example.gov.cn/app/"
    register_client(client_id="cas-after-saml", name="CAS 应用", protocol="cas",
                    services=[service + "*"], first_party=True)
    resp = client.get("/cas/login?" + urlencode({"service": service}))
    for _ in range(4):  # only the provider's own hops, never its login page
        assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
        loc = resp.headers["Location"]
        assert urlsplit(loc).path != "/login", loc
        if loc.startswith(service):
            break
        resp = client.get(loc)
    assert parse_qs(urlsplit(loc).query)["ticket"][0].startswith("ST-")
