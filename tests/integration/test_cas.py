"""CAS protocol 3.0 server (issue 13): registration of CAS services, the ticket
endpoints, attribute release, renew/gateway, proxy tickets and single logout."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from click.testing import CliRunner
from defusedxml import ElementTree as ET

from idp.cas.services import PatternError, check_pattern, matches
from idp.cli import main


@pytest.fixture
def run(tmp_path, monkeypatch):
    """``idp`` on its own embedded instance (the CLI builds its own app)."""
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    for var in ("DATABASE_URL", "REDIS_URL", "IDP_DATABASE_URL", "IDP_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()

    def _run(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    assert _run("init", "--json").exit_code == 0
    return _run


# -- registration -----------------------------------------------------------------------

def test_cli_registers_a_cas_service(run):
    res = run("client", "add", "--client-id", "cas1", "--protocol", "cas",
               "--service", "https://portal.example.gov.cn/app/*", "--min-level", "L3",
               "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["protocol"] == "cas" and out["client_secret"] is None
    assert out["services"] == ["https://portal.example.gov.cn/app/*"]
    assert out["min_level"] == "L3"
    again = run("client", "add", "--client-id", "cas1", "--protocol", "cas",
                "--service", "https://portal.example.gov.cn/", "--json")
    assert again.exit_code != 0 and "already exists" in again.stderr


@pytest.mark.parametrize("args,message", [
    (["--protocol", "cas"], "needs at least one --service"),
    (["--protocol", "cas", "--service", "http://portal.example.gov.cn/"], "https"),
    (["--protocol", "cas", "--service", "https://a.gov.cn*"], "wildcard"),
    (["--protocol", "cas", "--service", "https://*.gov.cn/"], "only at the end"),
    (["--protocol", "cas", "--service", "https://u@a.gov.cn/"], "user"),
    (["--protocol", "cas", "--service", "https://a.gov.cn/", "--redirect-uri",
      "https://a.gov.cn/cb"], "no OAuth settings"),
    (["--service", "https://a.gov.cn/"], "for CAS clients"),
])
def test_cli_refuses_bad_cas_registrations(run, args, message):
    res = run("client", "add", "--client-id", "bad", *args, "--json")
    assert res.exit_code != 0
    assert message in json.loads(res.stderr)["error"]


def test_oauth_endpoints_do_not_serve_a_cas_client(client, ctx):
    from idp.clients import find_client, register_client

    register_client(client_id="cas1", name="CAS", protocol="cas",
                    services=["https://portal.example.gov.cn/"], min_level="L3")
    row = find_client("cas1")
    assert row.protocol == "cas" and row.min_level == "L3" and row.grant_types == []
    resp = client.post("/token", data={"grant_type": "client_credentials",
                                       "client_id": "cas1"})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("pattern,service,ok", [
    ("https://a.gov.cn/app/*", "https://a.gov.cn/app/x?y=1", True),
    ("https://a.gov.cn/app/*", "https://a.gov.cn/other", False),
    ("https://a.gov.cn/", "https://a.gov.cn/", True),
    ("https://a.gov.cn/", "https://a.gov.cn/x", False),
    ("https://a.gov.cn/*", "https://a.gov.cn/\\\\evil.example/", False),
    ("https://a.gov.cn/*", "https://a.gov.cn/ x", False),
    ("https://a.gov.cn/*", "https://a.gov.cn/\tx", False),
])
def test_service_patterns(pattern, service, ok):
    assert check_pattern(pattern) == pattern
    assert matches(pattern, service) is ok


def test_a_pattern_never_admits_another_host():
    with pytest.raises(PatternError):
        check_pattern("https://a.gov.cn*")
    assert not matches("https://a.gov.cn/*", "https://a.gov.cn.evil.example/")


# -- the protocol -----------------------------------------------------------------------

SERVICE = "https://portal.example.gov.cn/app/"
NS = {"cas": "http://www.yale.edu/tp/cas"}


def make_cas(client_id="cas1", services=("https://portal.example.gov.cn/app/*",),
             first_party=True, sensitive=(), min_level=None, subject_type="public"):
    from idp.clients import register_client

    return register_client(client_id=client_id, name=f"CAS 应用 {client_id}", protocol="cas",
                           services=list(services), first_party=first_party,
                           sensitive_scopes=list(sensitive), min_level=min_level,
                           subject_type=subject_type)


def cas_login(client, service=SERVICE, consent="allow", **params):
    """/cas/login through the login (and consent) pages; the final response."""
    from tests.helpers import CITIZEN_ID, CITIZEN_PASSWORD, form_fields

    resp = client.get("/cas/login?" + urlencode({"service": service, **params}))
    for _ in range(8):
        if resp.status_code != 302:
            return resp
        loc = resp.headers["Location"]
        parts = urlsplit(loc)
        if parts.netloc and parts.netloc != "localhost":
            return resp  # back at the service
        if parts.path == "/login":
            fields = form_fields(client.get(loc).get_data(as_text=True))
            resp = client.post("/login", data={**fields, "username": CITIZEN_ID,
                                               "password": CITIZEN_PASSWORD})
        elif parts.path == "/consent":
            fields = form_fields(client.get(loc).get_data(as_text=True))
            resp = client.post("/consent", data={**fields, "consent": consent})
        elif parts.path == "/cas/login":
            resp = client.get(loc)
        else:
            return resp  # another page of the interaction (step-up, organisation)
    return resp


def ticket_of(resp, service=SERVICE) -> str:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:400]
    loc = resp.headers["Location"]
    assert loc.startswith(service + ("&" if "?" in service else "?") + "ticket=ST-"), loc
    return parse_qs(urlsplit(loc).query)["ticket"][0]


def validate(client, ticket, service=SERVICE, path="/cas/p3/serviceValidate", **params):
    resp = client.get(path + "?" + urlencode({"service": service, "ticket": ticket, **params}))
    assert resp.status_code == 200
    return resp


def parsed(resp):
    """(user, attributes, failure code) of an XML validation response."""
    root = ET.fromstring(resp.get_data())
    ok = root.find("cas:authenticationSuccess", NS)
    if ok is None:
        return None, None, root.find("cas:authenticationFailure", NS).get("code")
    attrs = ok.find("cas:attributes", NS)
    found = {} if attrs is None else {}
    for e in list(attrs) if attrs is not None else []:
        found.setdefault(e.tag.split("}")[1], []).append(e.text)
    return ok.find("cas:user", NS).text, (found if attrs is not None else None), None


def test_login_issues_a_ticket_that_validates_once_with_attributes(client, person):
    from tests.helpers import CITIZEN_ID

    make_cas()
    ticket = ticket_of(cas_login(client))
    user, attrs, code = parsed(validate(client, ticket))
    assert code is None and user == person.id
    assert attrs["name"] == ["李四"]
    assert attrs["id_number_masked"] == ["110105********002X"]
    assert "id_number" not in attrs and CITIZEN_ID not in str(attrs)
    assert attrs["acr"] == ["L2"] and attrs["amr"] == ["pwd"] and attrs["channel"] == ["web"]
    assert attrs["isFromNewLogin"] == ["true"]  # the password was typed for this request
    # single use: the replay is refused
    assert parsed(validate(client, ticket))[2] == "INVALID_TICKET"
    # the next ticket comes from the SSO session
    again = parsed(validate(client, ticket_of(cas_login(client))))[1]
    assert again["isFromNewLogin"] == ["false"]


def test_json_and_cas2_and_cas1_answers(client, person):
    make_cas()
    ticket = ticket_of(cas_login(client))
    doc = validate(client, ticket, format="JSON").get_json()["serviceResponse"]
    ok = doc["authenticationSuccess"]
    assert ok["user"] == person.id and ok["attributes"]["name"] == ["李四"]
    ticket = ticket_of(cas_login(client))
    user, attrs, _ = parsed(validate(client, ticket, path="/cas/serviceValidate"))
    assert user == person.id and attrs is None  # CAS 2.0 releases no attributes
    ticket = ticket_of(cas_login(client))
    resp = validate(client, ticket, path="/cas/validate")
    assert resp.get_data(as_text=True) == f"yes\n{person.id}\n"
    assert validate(client, ticket, path="/cas/validate").get_data(as_text=True) == "no\n\n"
    fail = validate(client, "ST-nope", format="json").get_json()["serviceResponse"]
    assert fail["authenticationFailure"]["code"] == "INVALID_TICKET"


def test_ticket_for_another_service_is_refused_and_used_up(client, person):
    make_cas()
    make_cas("cas2", services=("https://other.example.gov.cn/*",))
    ticket = ticket_of(cas_login(client))
    assert parsed(validate(client, ticket, service="https://other.example.gov.cn/"))[2] \
        == "INVALID_SERVICE"
    assert parsed(validate(client, ticket))[2] == "INVALID_TICKET"
    # the exact URL the ticket was issued for, not another under the same pattern
    ticket = ticket_of(cas_login(client))
    assert parsed(validate(client, ticket, service=SERVICE + "x"))[2] == "INVALID_SERVICE"


def test_expired_ticket_is_refused(client, person, ctx, monkeypatch):
    make_cas()
    monkeypatch.setitem(ctx.config, "CAS_TICKET_TTL", 0.2)
    ticket = ticket_of(cas_login(client))
    time.sleep(0.5)  # past the ticket's whole lifetime, not racing the server
    assert parsed(validate(client, ticket))[2] == "INVALID_TICKET"


@pytest.mark.parametrize("service", [
    "https://evil.example/",
    "https://portal.example.gov.cn.evil.example/app/",
    "https://portal.example.gov.cn@evil.example/app/",
    "https://evil.example/?u=https://portal.example.gov.cn/app/",
    "//evil.example/app/",
    "https://portal.example.gov.cn/app/\\@evil.example",
    "javascript:alert(1)//https://portal.example.gov.cn/app/",
    "http://portal.example.gov.cn/app/",
])
def test_unregistered_service_gets_a_page_never_a_redirect(client, person, service):
    make_cas()
    resp = client.get("/cas/login?" + urlencode({"service": service}))
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert "未登记的应用" in resp.get_data(as_text=True)
    logout = client.get("/cas/logout?" + urlencode({"service": service}))
    assert logout.status_code == 200 and "Location" not in logout.headers


def test_gateway_never_shows_a_page(client, person):
    make_cas()
    resp = client.get("/cas/login?" + urlencode({"service": SERVICE, "gateway": "true"}))
    assert resp.status_code == 302 and resp.headers["Location"] == SERVICE
    ticket_of(cas_login(client))  # now signed in
    resp = client.get("/cas/login?" + urlencode({"service": SERVICE, "gateway": "true"}))
    ticket_of(resp)


def test_gateway_with_consent_needed_returns_without_ticket(client, person):
    make_cas(first_party=False)
    make_cas("cas2", services=("https://other.example.gov.cn/*",))
    ticket_of(cas_login(client, service="https://other.example.gov.cn/"),
              service="https://other.example.gov.cn/")
    resp = client.get("/cas/login?" + urlencode({"service": SERVICE, "gateway": "1"}))
    assert resp.status_code == 302 and resp.headers["Location"] == SERVICE


def test_renew_forces_a_new_sign_in(client, person):
    make_cas()
    ticket_of(cas_login(client))  # signed in
    sso_ticket = ticket_of(cas_login(client))  # from the session, no password
    assert parsed(validate(client, sso_ticket, renew="true"))[2] == "INVALID_TICKET"
    resp = client.get("/cas/login?" + urlencode({"service": SERVICE, "renew": "true"}))
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    fresh = ticket_of(cas_login(client, renew="true"))
    user, attrs, code = parsed(validate(client, fresh, renew="true"))
    assert code is None and attrs["isFromNewLogin"] == ["true"]


def test_consent_and_refusal(client, person):
    make_cas(first_party=False)
    resp = cas_login(client, consent="deny")
    assert resp.status_code == 403 and "Location" not in resp.headers
    assert f'href="{SERVICE}"' in resp.get_data(as_text=True)
    ticket_of(cas_login(client))  # allowed this time; no second question afterwards
    ticket_of(client.get("/cas/login?" + urlencode({"service": SERVICE})))


def test_full_id_number_only_for_a_service_allowed_idcard(client, person):
    from tests.helpers import CITIZEN_ID

    make_cas("plain", services=("https://a.example.gov.cn/*",))
    make_cas("allowed", services=("https://b.example.gov.cn/*",), sensitive=("idcard",))
    t = ticket_of(cas_login(client, service="https://a.example.gov.cn/"),
                  service="https://a.example.gov.cn/")
    attrs = parsed(validate(client, t, service="https://a.example.gov.cn/"))[1]
    assert "id_number" not in attrs
    t = ticket_of(cas_login(client, service="https://b.example.gov.cn/"),
                  service="https://b.example.gov.cn/")
    attrs = parsed(validate(client, t, service="https://b.example.gov.cn/"))[1]
    assert attrs["id_number"] == [CITIZEN_ID]


def test_pairwise_user(client, person):
    make_cas(subject_type="pairwise")
    user = parsed(validate(client, ticket_of(cas_login(client))))[0]
    assert user != person.id and len(user) > 20


def test_service_minimum_level_asks_for_step_up(client, person):
    make_cas(min_level="L3")
    resp = cas_login(client)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login/step-up"
    assert client.get(resp.headers["Location"]).status_code == 200


def test_one_session_across_oidc_and_cas(client, person):
    from tests.helpers import authorize_url, follow_login, make_client, query

    make_cas()
    rp = make_client("oidc1", first_party=True)
    resp = follow_login(client, client.get(authorize_url(rp)))
    assert "code" in query(resp.headers["Location"])
    # no password on the CAS service now
    resp = client.get("/cas/login?" + urlencode({"service": SERVICE}))
    ticket_of(resp)


def test_validation_refuses_bad_requests(client, person):
    make_cas()
    for params in ({"service": SERVICE}, {"ticket": "ST-1"}, {}):
        resp = client.get("/cas/p3/serviceValidate?" + urlencode(params))
        assert parsed(resp)[2] == "INVALID_REQUEST"
    assert parsed(validate(client, "TGT-1"))[2] == "INVALID_TICKET_SPEC"
    assert parsed(validate(client, "ST-" + "a" * 300))[2] == "INVALID_TICKET_SPEC"
    # XML stays XML whatever the ticket holds
    root = ET.fromstring(validate(client, "ST-<x>&'\"").get_data())
    assert root.find("cas:authenticationFailure", NS).get("code") == "INVALID_TICKET"


def test_audit_records_tickets_without_personal_data(client, person, ctx):
    from idp import audit
    from idp.audit import AuditEvent
    from idp.extensions import db
    from tests.helpers import CITIZEN_ID

    make_cas()
    validate(client, ticket_of(cas_login(client, service=SERVICE + "?q=1"),
                               service=SERVICE + "?q=1"), service=SERVICE + "?q=1")
    audit.flush()
    rows = db.session.scalars(db.select(AuditEvent)).all()
    kinds = {r.event for r in rows}
    assert {"cas.ticket", "cas.validate"} <= kinds
    text = json.dumps([r.details for r in rows], ensure_ascii=False)
    assert CITIZEN_ID not in text and "?q=1" not in text


# -- proxy tickets ----------------------------------------------------------------------

BACKEND = "https://backend.example.gov.cn/api"


@pytest.fixture
def tls_service(tmp_path, ctx, monkeypatch):
    from tests.cas_helpers import Service, self_signed

    cert, key = self_signed(tmp_path)
    monkeypatch.setitem(ctx.config, "CAS_PROXY_CA_FILE", str(cert))
    svc = Service(tls=(cert, key))
    yield svc
    svc.close()


def _success(resp):
    root = ET.fromstring(resp.get_data())
    return root.find("cas:authenticationSuccess", NS)


def test_proxy_granting_ticket_to_proxy_ticket(client, person, tls_service):
    make_cas(services=("https://portal.example.gov.cn/app/*", tls_service.base + "/*"))
    make_cas("backend", services=("https://backend.example.gov.cn/*",))
    pgt_url = tls_service.base + "/pgtCallback"
    ok = _success(validate(client, ticket_of(cas_login(client)), pgtUrl=pgt_url))
    iou = ok.find("cas:proxyGrantingTicket", NS).text
    call = tls_service.gets[-1]
    assert iou.startswith("PGTIOU-") and call["pgtIou"] == iou
    pgt = call["pgtId"]
    assert pgt.startswith("PGT-")

    resp = client.get("/cas/proxy?" + urlencode({"pgt": pgt, "targetService": BACKEND}))
    pt = ET.fromstring(resp.get_data()).find("cas:proxySuccess/cas:proxyTicket", NS).text
    assert pt.startswith("PT-")
    ok = _success(validate(client, pt, service=BACKEND, path="/cas/p3/proxyValidate"))
    assert ok.find("cas:user", NS).text == person.id
    assert [p.text for p in ok.findall("cas:proxies/cas:proxy", NS)] == [pgt_url]
    assert ok.find("cas:attributes/cas:name", NS).text == "李四"
    assert parsed(validate(client, pt, service=BACKEND, path="/cas/p3/proxyValidate"))[2] \
        == "INVALID_TICKET"  # single use

    # a proxy ticket is not a service ticket
    doc = client.get("/cas/proxy?" + urlencode({"pgt": pgt, "targetService": BACKEND,
                                                 "format": "JSON"})).get_json()
    pt2 = doc["serviceResponse"]["proxySuccess"]["proxyTicket"]
    assert parsed(validate(client, pt2, service=BACKEND))[2] == "INVALID_TICKET_SPEC"

    def proxy_failure(**params):
        root = ET.fromstring(client.get("/cas/proxy?" + urlencode(params)).get_data())
        return root.find("cas:proxyFailure", NS).get("code")

    assert proxy_failure(pgt=pgt, targetService="https://evil.example/") \
        == "UNAUTHORIZED_SERVICE"
    assert proxy_failure(pgt="PGT-0000", targetService=BACKEND) == "INVALID_TICKET"
    assert proxy_failure(pgt=pgt) == "INVALID_REQUEST"


def test_pgt_url_must_be_https_and_registered(client, person, ctx):
    from tests.cas_helpers import Service

    plain = Service()
    try:
        make_cas(services=("https://portal.example.gov.cn/app/*", plain.base + "/*"))
        for pgt_url in (plain.base + "/cb",  # http, even on loopback, even registered
                        "https://unregistered.example/cb", "ftp://x/"):
            resp = validate(client, ticket_of(cas_login(client)), pgtUrl=pgt_url)
            assert parsed(resp)[2] == "INVALID_PROXY_CALLBACK"
        assert plain.gets == []  # never called
    finally:
        plain.close()


def test_pgt_callback_that_fails_gets_no_pgt(client, person, tmp_path, ctx):
    from tests.cas_helpers import Service, self_signed

    cert, key = self_signed(tmp_path)
    untrusted = Service(tls=(cert, key))  # CAS_PROXY_CA_FILE does not name it
    try:
        make_cas(services=("https://portal.example.gov.cn/app/*", untrusted.base + "/*"))
        ok = _success(validate(client, ticket_of(cas_login(client)),
                               pgtUrl=untrusted.base + "/cb"))
        assert ok is not None and ok.find("cas:proxyGrantingTicket", NS) is None
    finally:
        untrusted.close()


def test_pgt_callback_not_200_gets_no_pgt(client, person, tls_service):
    tls_service.status = 404
    make_cas(services=("https://portal.example.gov.cn/app/*", tls_service.base + "/*"))
    ok = _success(validate(client, ticket_of(cas_login(client)),
                           pgtUrl=tls_service.base + "/cb"))
    assert ok is not None and ok.find("cas:proxyGrantingTicket", NS) is None
    pgt = tls_service.gets[-1]["pgtId"]
    root = ET.fromstring(client.get("/cas/proxy?" + urlencode(
        {"pgt": pgt, "targetService": SERVICE})).get_data())
    assert root.find("cas:proxyFailure", NS).get("code") == "INVALID_TICKET"


# -- single logout ----------------------------------------------------------------------

@pytest.fixture
def service():
    from tests.cas_helpers import Service

    svc = Service()
    yield svc
    svc.close()


def _logout_request(post) -> str:
    root = ET.fromstring(post["logoutRequest"])
    assert root.tag == "{urn:oasis:names:tc:SAML:2.0:protocol}LogoutRequest"
    return root.find("{urn:oasis:names:tc:SAML:2.0:protocol}SessionIndex").text


def test_cas_logout_sends_logout_requests_and_ends_proxy_tickets(client, person, service,
                                                                  tls_service):
    from tests.helpers import form_fields

    app_url = service.base + "/app?x=1"
    make_cas(services=(service.base + "/*", tls_service.base + "/*"))
    ticket = ticket_of(cas_login(client, service=app_url), service=app_url)
    validate(client, ticket, service=app_url, pgtUrl=tls_service.base + "/cb")
    pgt = tls_service.gets[-1]["pgtId"]

    page = client.get("/cas/logout?" + urlencode({"service": service.base + "/bye"}))
    assert page.status_code == 200 and "退出" in page.get_data(as_text=True)
    assert service.posts == []  # a bare link signs nobody out
    resp = client.post("/cas/logout", data=form_fields(page.get_data(as_text=True)))
    assert resp.status_code == 302 and resp.headers["Location"] == service.base + "/bye"
    posts = service.wait_posts(1)
    assert [_logout_request(p) for p in posts] == [ticket]
    root = ET.fromstring(client.get("/cas/proxy?" + urlencode(
        {"pgt": pgt, "targetService": app_url})).get_data())
    assert root.find("cas:proxyFailure", NS).get("code") == "INVALID_TICKET"
    # signed out: the next login asks for the password again
    resp = client.get("/cas/login?" + urlencode({"service": app_url}))
    assert urlsplit(resp.headers["Location"]).path == "/login"


def test_oidc_logout_reaches_cas_services(client, person, service):
    from tests.helpers import make_client, tokens_for

    make_cas(services=(service.base + "/*",))
    rp = make_client("oidc1", first_party=True)
    tokens = tokens_for(client, rp)
    ticket = ticket_of(client.get("/cas/login?" + urlencode({"service": service.base + "/"})),
                       service=service.base + "/")
    resp = client.get("/logout?" + urlencode({"id_token_hint": tokens["id_token"]}))
    assert resp.status_code == 200
    assert [_logout_request(p) for p in service.wait_posts(1)] == [ticket]


def test_ticket_issued_before_logout_does_not_validate_after(client, person, service):
    from tests.helpers import form_fields

    make_cas()
    ticket = ticket_of(cas_login(client))
    page = client.get("/cas/logout")
    client.post("/cas/logout", data=form_fields(page.get_data(as_text=True)))
    assert parsed(validate(client, ticket))[2] == "INVALID_TICKET"


# -- odds and ends ----------------------------------------------------------------------

def test_method_post_returns_the_ticket_in_a_form(client, person):
    make_cas()
    ticket_of(cas_login(client))  # signed in
    resp = client.get("/cas/login?" + urlencode({"service": SERVICE, "method": "POST"}))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and f'action="{SERVICE}"' in html
    ticket = re.search(r'name="ticket" value="(ST-[0-9a-f]+)"', html).group(1)
    assert "cas_post.js" in html
    assert parsed(validate(client, ticket))[0] == person.id


def test_login_without_service(client, person):
    resp = client.get("/cas/login")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    make_cas()
    ticket_of(cas_login(client))
    page = client.get("/cas/login")
    assert page.status_code == 200 and "您已登录" in page.get_data(as_text=True)


def test_english_unknown_service_page(client):
    resp = client.get("/cas/login?" + urlencode({"service": "https://evil.example/",
                                                 "lang": "en"}))
    assert resp.status_code == 400 and "Unregistered website" in resp.get_data(as_text=True)


@pytest.mark.parametrize("settings_value,problem", [
    ({"CAS_TICKET_TTL": 0}, "IDP_CAS_TICKET_TTL"),
    ({"CAS_PGT_TTL": -1}, "IDP_CAS_PGT_TTL"),
    ({"CAS_PROXY_CA_FILE": "/nonexistent/ca.pem"}, "IDP_CAS_PROXY_CA_FILE"),
])
def test_cas_settings_are_validated(tmp_path, monkeypatch, settings_value, problem):
    from idp import settings
    from idp.settings import ConfigError

    for key in ("IDP_CAS_TICKET_TTL", "IDP_CAS_PGT_TTL", "IDP_CAS_PROXY_CA_FILE"):
        monkeypatch.delenv(key, raising=False)
    cfg = settings.load(str(tmp_path), {"ISSUER": "http://localhost", **settings_value})
    with pytest.raises(ConfigError, match=problem):
        settings.validate(cfg, instance_path=str(tmp_path))


def test_signed_in_through_cas_an_oidc_site_needs_no_password(client, person):
    from tests.helpers import authorize_url, make_client, query

    make_cas()
    ticket_of(cas_login(client))  # the password, typed once, on the CAS service's behalf
    rp = make_client("oidc1", first_party=True)
    resp = client.get(authorize_url(rp))
    assert resp.status_code == 302 and "code" in query(resp.headers["Location"])


@pytest.mark.parametrize("path", [
    "/cas/login?service=%00", "/cas/login?service=https://a:99999/&renew=%ff",
    "/cas/login?service=" + "a" * 5000, "/cas/login?service=https://portal.example.gov.cn/app/&_rid=%00",
    "/cas/p3/serviceValidate?service=%00&ticket=ST-%00", "/cas/validate?ticket=ST-1",
    "/cas/p3/serviceValidate?service=x&ticket=ST-1&pgtUrl=https://a:99999/",
    "/cas/proxy?pgt=PGT-%00&targetService=https://a:99999/",
    "/cas/proxyValidate?service=x&ticket=PT-1&format=%ff",
    "/cas/logout?service=%00",
])
def test_bad_input_is_a_4xx_or_a_cas_failure_never_a_500(client, path):
    make_cas()
    resp = client.get(path)
    assert resp.status_code < 500, resp.get_data(as_text=True)[:300]


def test_an_operator_ending_the_sessions_reaches_cas_services(client, person, service):
    from idp import single_logout

    make_cas(services=(service.base + "/*",))
    ticket = ticket_of(cas_login(client, service=service.base + "/"),
                       service=service.base + "/")
    with client.application.test_request_context():
        futures = single_logout.end_all_sessions(person.id, actor="admin:test",
                                                 reason="lost phone")
    assert [f.result(timeout=10) for f in futures] == [True]
    assert [_logout_request(p) for p in service.posts] == [ticket]
