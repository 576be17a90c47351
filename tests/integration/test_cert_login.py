"""Sign-in with a citizen's digital certificate (L5), as forwarded by the TLS terminator.

The PKI is built here with ``cryptography``: a root, an intermediate that issues the
citizens' certificates, and an unrelated CA. Keys are ECDSA P-256, verified by
``cryptography``; SM2 chains (verified by OpenSSL) are in test_cert_login_sm2.py.

The certificate arrives in ``X-SSL-Client-Cert`` from a proxy; the app trusts one hop
(``TRUSTED_PROXIES`` = 1). The provider reads that setting per request, so setting it on
the shared app here is what a deployment sets at start (where ProxyFix also goes in).
"""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import quote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import audit
from idp.audit import AuditEvent
from idp.extensions import db
from idp.models import Person
from tests.helpers import (
    CITIZEN_ID,
    authorize_url,
    exchange,
    follow_login,
    form_fields,
    make_person,
    pkce_pair,
    query,
)

HEADER = "X-SSL-Client-Cert"
OTHER_ID = "110105199003071239"  # valid, and nobody's unless a test registers it
NOW = dt.datetime.now(dt.UTC)
PROXY = {"REMOTE_ADDR": "10.0.0.2"}  # the terminator; the browser is in X-Forwarded-For


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "测试数字证书认证中心"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CA:
    def __init__(self, cn: str, parent: CA | None = None):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(cn)
        issuer = parent or self
        b = (x509.CertificateBuilder().subject_name(self.name).issuer_name(issuer.name)
             .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(NOW - dt.timedelta(days=365))
             .not_valid_after(NOW + dt.timedelta(days=3650))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None if parent is None
                                                  else 0), critical=True)
             .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                          False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                            critical=False))
        if parent is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                parent.key.public_key()), critical=False)
        self.cert = b.sign(issuer.key, hashes.SHA256())

    def issue(self, subject: list[tuple], *, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),
              days=(-30, 365), serial: int | None = None) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(oid, v) for oid, v in subject]))
             .issuer_name(self.name).public_key(key.public_key())
             .serial_number(serial or x509.random_serial_number())
             .not_valid_before(NOW + dt.timedelta(days=days[0]))
             .not_valid_after(NOW + dt.timedelta(days=days[1]))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False,
                                          False), critical=True)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 self.key.public_key()), critical=False))
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        return b.sign(self.key, hashes.SHA256())

    def crl(self, revoked: list[int], *, next_update_days: float = 1) -> bytes:
        b = (x509.CertificateRevocationListBuilder().issuer_name(self.name)
             .last_update(NOW - dt.timedelta(days=2))
             .next_update(NOW + dt.timedelta(days=next_update_days)))
        for serial in revoked:
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(NOW - dt.timedelta(hours=2)).build())
        return b.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def citizen(number=CITIZEN_ID, name="李四"):
    return [(NameOID.COUNTRY_NAME, "CN"), (NameOID.COMMON_NAME, name),
            (NameOID.SERIAL_NUMBER, number)]


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def escaped(cert: x509.Certificate) -> str:
    """As nginx's $ssl_client_escaped_cert: the PEM, URL-encoded."""
    return quote(pem(cert), safe="")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    root = CA("测试根CA")
    inter = CA("测试个人证书CA", parent=root)
    stranger = CA("其他CA")
    revoked_serial = x509.random_serial_number()
    (d / "ca.pem").write_text(pem(root.cert, inter.cert))
    (d / "crl.pem").write_bytes(inter.crl([revoked_serial]) + root.crl([]))
    (d / "stale.pem").write_bytes(inter.crl([], next_update_days=-0.5))
    return {"dir": d, "root": root, "inter": inter, "stranger": stranger,
            "revoked_serial": revoked_serial, "good": inter.issue(citizen())}


@pytest.fixture
def certs(ctx, monkeypatch, pki):
    for key, value in {"CERT_LOGIN": True, "TRUSTED_PROXIES": 1, "CERT_HEADER": HEADER,
                       "CERT_CA_FILE": str(pki["dir"] / "ca.pem"),
                       "CERT_CRL_FILE": str(pki["dir"] / "crl.pem"),
                       "CERT_ID_FIELD": "serialNumber"}.items():
        monkeypatch.setitem(ctx.config, key, value)
    return pki


def via_proxy(value: str | None) -> dict:
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    if value is not None:
        headers[HEADER] = value
    return {"headers": headers, "environ_base": PROXY}


def confirm_fields(resp) -> dict:
    assert resp.status_code == 200, resp.get_data(as_text=True)[-800:]
    fields = form_fields(resp.get_data(as_text=True))
    assert "fingerprint" in fields
    return fields


def events(name: str):
    audit.flush()
    db.session.expire_all()
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)).all()


def sso_cookie(client):
    return client.get_cookie("idp_sso")


def id_claims(client, rp, code, verifier) -> dict:
    body = exchange(client, rp, code, verifier).get_json()
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    return jwt.decode(body["id_token"], jwks, algorithms=["ES256", "RS256"]).claims


def test_certificate_signs_in_at_l5_and_the_id_token_says_so(certs, client, person, rp):
    verifier, challenge = pkce_pair()
    resp = client.get(authorize_url(rp, acr_values="L5", code_challenge=challenge,
                                    code_challenge_method="S256"))
    login = resp.headers["Location"]
    assert urlsplit(login).path == "/login"
    rid = query(login)["rid"]
    page = client.get(login).get_data(as_text=True)
    assert 'id="cert-login-link"' in page and f"rid={rid}" in page

    shown = client.get(f"/login/cert?rid={rid}", **via_proxy(escaped(certs["good"])))
    html = shown.get_data(as_text=True)
    assert "李*" in html and "110105********002X" in html
    assert CITIZEN_ID not in html and "李四" not in html
    done = client.post("/login/cert", data=confirm_fields(shown),
                       **via_proxy(escaped(certs["good"])))
    assert done.status_code == 302 and urlsplit(done.headers["Location"]).path == "/authorize"

    final = follow_login(client, done)
    q = query(final.headers["Location"])
    claims = id_claims(client, rp, q["code"], verifier)
    assert claims["acr"] == "L5"
    assert claims["amr"] == ["sc"]  # the internal "cert" marker stays out of tokens

    db.session.expire_all()
    row = db.session.get(Person, person.id)
    assert (row.assurance_level, row.assurance_method) == ("L5", "certificate")
    success = events("login.success")[-1]
    assert success.details["method"] == "cert" and success.details["acr"] == "L5"
    assert success.details["issuer"].startswith("CN=测试个人证书CA")
    assert success.details["serial"].count(":") > 0
    assert CITIZEN_ID not in str(success.details) and "李四" not in str(success.details)
    assert [e.details["to"] for e in events("assurance.raised")] == ["L5"]


def test_login_page_offers_certificates_only_when_they_can_be_read(ctx, client, monkeypatch):
    assert 'id="cert-login-link"' not in client.get("/login").get_data(as_text=True)
    monkeypatch.setitem(ctx.config, "CERT_LOGIN", True)
    # On, but no proxy whose header we may believe: the option could not work.
    assert 'id="cert-login-link"' not in client.get("/login").get_data(as_text=True)
    monkeypatch.setitem(ctx.config, "TRUSTED_PROXIES", 1)
    monkeypatch.setitem(ctx.config, "CERT_LOGIN_URL", "https://localhost:8443/login/cert")
    html = client.get("/login").get_data(as_text=True)
    assert 'href="https://localhost:8443/login/cert"' in html


def _leaf(pki, case):
    inter = pki["inter"]
    if case == "expired":
        return inter.issue(citizen(), days=(-400, -1))
    if case == "not_yet_valid":
        return inter.issue(citizen(), days=(2, 400))
    if case == "untrusted":
        return pki["stranger"].issue(citizen())
    if case == "revoked":
        return inter.issue(citizen(), serial=pki["revoked_serial"])
    if case == "wrong_usage":
        return inter.issue(citizen(), eku=(ExtendedKeyUsageOID.EMAIL_PROTECTION,))
    if case == "no_eku":
        return inter.issue(citizen(), eku=())
    if case == "not_registered":
        return inter.issue(citizen(OTHER_ID))
    if case == "name_mismatch":
        return inter.issue(citizen(name="王五"))
    if case == "no_id":
        return inter.issue([(NameOID.COMMON_NAME, "李四"), (NameOID.SERIAL_NUMBER, "12345")])
    raise AssertionError(case)


@pytest.mark.parametrize("case, reason, status", [
    ("expired", "expired", 403),
    ("not_yet_valid", "not_yet_valid", 403),
    ("untrusted", "untrusted", 403),
    ("revoked", "revoked", 403),
    ("wrong_usage", "wrong_usage", 403),
    ("no_eku", "wrong_usage", 403),
    ("not_registered", "not_registered", 403),
    ("name_mismatch", "name_mismatch", 403),
    ("no_id", "no_id", 403),
])
def test_refused_certificates_sign_nobody_in(certs, client, person, case, reason, status):
    value = escaped(_leaf(certs, case))
    page = client.get("/login/cert", **via_proxy(value))
    assert page.status_code == status
    assert 'name="fingerprint"' not in page.get_data(as_text=True)
    csrf = form_fields(client.get("/login").get_data(as_text=True))["csrf_token"]
    resp = client.post("/login/cert", data={"csrf_token": csrf, "fingerprint": "x"},
                       **via_proxy(value))
    assert resp.status_code == status
    assert sso_cookie(client) is None
    failures = events("login.failure")
    assert [e.details["reason"] for e in failures] == [reason, reason]
    assert all(e.details["method"] == "cert" and e.details["serial"] for e in failures)
    if case == "name_mismatch":
        assert failures[0].subject == person.id
        assert "王五" not in str(failures[0].details)
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L2"


def test_stale_crl_fails_closed(certs, client, person, monkeypatch, ctx):
    monkeypatch.setitem(ctx.config, "CERT_CRL_FILE", str(certs["dir"] / "stale.pem"))
    assert client.get("/login/cert", **via_proxy(escaped(certs["good"]))).status_code == 503
    assert events("login.failure")[-1].details["reason"] == "crl_unavailable"


def test_certificate_relabelled_as_sm2_is_untrusted(certs, client, person):
    # An SM2-with-SM3 label sends the certificate to OpenSSL, which finds no CA whose
    # key could have made such a signature (the intermediate's key is ECDSA).
    der = certs["good"].public_bytes(serialization.Encoding.DER)
    ecdsa_sha256 = bytes.fromhex("06082a8648ce3d040302")
    sm2_sm3 = bytes.fromhex("06082a811ccf55018375")  # 1.2.156.10197.1.501, same length
    forged = der.replace(ecdsa_sha256, sm2_sm3)
    assert forged != der
    resp = client.get("/login/cert", **via_proxy(base64.b64encode(forged).decode()))
    assert resp.status_code == 403
    failure = events("login.failure")[-1].details
    assert failure["reason"] == "untrusted"
    assert failure["check"].startswith("OpenSSL ")


@pytest.mark.parametrize("setting, value", [("CERT_LOGIN", False), ("TRUSTED_PROXIES", 0)])
def test_header_is_ignored_unless_enabled_and_from_a_trusted_proxy(certs, client, person,
                                                                   monkeypatch, ctx,
                                                                   setting, value):
    monkeypatch.setitem(ctx.config, setting, value)
    page = client.get("/login/cert", **via_proxy(escaped(certs["good"])))
    html = page.get_data(as_text=True)
    assert 'name="fingerprint"' not in html and "110105" not in html
    assert page.status_code == (404 if setting == "CERT_LOGIN" else 200)
    csrf = form_fields(client.get("/login").get_data(as_text=True))["csrf_token"]
    fp = certs["good"].fingerprint(hashes.SHA256()).hex()
    resp = client.post("/login/cert", data={"csrf_token": csrf, "fingerprint": fp},
                       **via_proxy(escaped(certs["good"])))
    assert resp.status_code != 302 and sso_cookie(client) is None


def _tab_folded(cert):
    # nginx's older $ssl_client_cert: PEM with every line after the first tab-indented.
    lines = pem(cert).strip().splitlines()
    return lines[0] + "".join("\t" + line for line in lines[1:])


@pytest.mark.parametrize("encoding", ["escaped", "escaped_with_chain", "tab_folded", "der"])
def test_header_encodings(certs, client, person, encoding, monkeypatch, ctx):
    good = certs["good"]
    if encoding == "escaped_with_chain":
        # The bundle holds only the root: the intermediate comes with the leaf.
        (certs["dir"] / "root.pem").write_text(pem(certs["root"].cert))
        monkeypatch.setitem(ctx.config, "CERT_CA_FILE", str(certs["dir"] / "root.pem"))
        value = quote(pem(good, certs["inter"].cert), safe="")
    else:
        value = {"escaped": escaped(good), "tab_folded": _tab_folded(good),
                 "der": base64.b64encode(good.public_bytes(serialization.Encoding.DER)).decode(),
                 }[encoding]
    resp = client.get("/login/cert", **via_proxy(value))
    fields = confirm_fields(resp)
    assert client.post("/login/cert", data=fields, **via_proxy(value)).status_code == 302
    assert sso_cookie(client) is not None


@pytest.mark.parametrize("value", [
    "%%%garbage", "not base64 at all!", "QUFBQQ==",
    quote("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n", safe="")])
def test_unreadable_header_is_a_clear_400(certs, client, value):
    resp = client.get("/login/cert", **via_proxy(value))
    assert resp.status_code == 400
    assert "无法读取" in resp.get_data(as_text=True)


def test_header_sent_twice_is_refused(certs, client, person):
    # What the app sees when a proxy appends its header to one the client sent.
    twice = escaped(certs["stranger"].issue(citizen())) + ", " + escaped(certs["good"])
    assert client.get("/login/cert", **via_proxy(twice)).status_code == 400


def test_id_number_from_the_cn(certs, client, person, monkeypatch, ctx):
    monkeypatch.setitem(ctx.config, "CERT_ID_FIELD", r"\((?P<id>\d{17}[\dXx])\)")
    leaf = certs["inter"].issue([(NameOID.COMMON_NAME, f"李四({CITIZEN_ID.lower()})")])
    fields = confirm_fields(client.get("/login/cert", **via_proxy(escaped(leaf))))
    assert client.post("/login/cert", data=fields, **via_proxy(escaped(leaf))).status_code == 302
    other = certs["inter"].issue([(NameOID.COMMON_NAME, f"王五({CITIZEN_ID})")])
    assert client.get("/login/cert", **via_proxy(escaped(other))).status_code == 403


def test_confirmation_needs_csrf_and_the_same_certificate(certs, client, person):
    value = escaped(certs["good"])
    fields = confirm_fields(client.get("/login/cert", **via_proxy(value)))
    no_csrf = {k: v for k, v in fields.items() if k != "csrf_token"}
    assert client.post("/login/cert", data=no_csrf, **via_proxy(value)).status_code == 400
    assert sso_cookie(client) is None
    # Another certificate plugged in between the page and the button: shown again first.
    other = escaped(certs["inter"].issue(citizen()))
    assert client.post("/login/cert", data=fields, **via_proxy(other)).status_code == 409
    assert sso_cookie(client) is None
    assert events("login.success") == []


def _password_session_at_step_up(client, rp):
    verifier, challenge = pkce_pair()
    resp = follow_login(client, client.get(authorize_url(
        rp, acr_values="L5", code_challenge=challenge, code_challenge_method="S256")))
    loc = resp.headers["Location"]
    assert urlsplit(loc).path == "/login/step-up"
    return verifier, loc


def test_step_up_to_l5_keeps_the_session(certs, client, person, rp):
    verifier, loc = _password_session_at_step_up(client, rp)
    rid = query(loc)["rid"]
    html = client.get(loc).get_data(as_text=True)
    assert 'id="stepup-cert-start"' in html and f"rid={rid}&amp;step_up=1" in html
    before = sso_cookie(client).value
    value = escaped(certs["good"])
    fields = confirm_fields(client.get(f"/login/cert?rid={rid}&step_up=1", **via_proxy(value)))
    assert fields["step_up"] == "1"
    done = client.post("/login/cert", data=fields, **via_proxy(value))
    assert done.status_code == 302
    assert sso_cookie(client).value == before  # elevated in place, not replaced
    q = query(follow_login(client, done).headers["Location"])
    claims = id_claims(client, rp, q["code"], verifier)
    assert claims["acr"] == "L5" and claims["amr"] == ["pwd", "sc"]
    step = events("stepup.success")[-1]
    assert step.details["method"] == "cert" and step.details["to"] == "L5"


def test_step_up_with_someone_elses_certificate_is_refused(certs, client, person, rp):
    make_person(OTHER_ID, name="王五", phone="13700001111")
    _verifier, loc = _password_session_at_step_up(client, rp)
    rid = query(loc)["rid"]
    before = sso_cookie(client).value
    value = escaped(certs["inter"].issue(citizen(OTHER_ID, "王五")))
    page = client.get(f"/login/cert?rid={rid}&step_up=1", **via_proxy(value))
    assert page.status_code == 403 and 'name="fingerprint"' not in page.get_data(as_text=True)
    assert sso_cookie(client).value == before
    failure = events("stepup.failure")[-1]
    assert failure.details["reason"] == "other_person" and failure.subject == person.id
    db.session.expire_all()
    assert {p.assurance_level for p in db.session.scalars(db.select(Person))} == {"L2"}


def test_missing_ca_bundle_refuses_rather_than_trusting(certs, client, person, monkeypatch,
                                                        ctx):
    monkeypatch.setitem(ctx.config, "CERT_CA_FILE", str(certs["dir"] / "nowhere.pem"))
    resp = client.get("/login/cert", **via_proxy(escaped(certs["good"])))
    assert resp.status_code == 503 and 'name="fingerprint"' not in resp.get_data(as_text=True)
    assert events("login.failure")[-1].details["reason"] == "unavailable"


def test_step_up_offers_a_certificate_only_for_the_top_levels(certs, client, person, rp):
    resp = follow_login(client, client.get(authorize_url(rp, acr_values="L3")))
    assert urlsplit(resp.headers["Location"]).path == "/login/step-up"
    assert 'id="stepup-cert-start"' not in client.get(resp.headers["Location"]).get_data(
        as_text=True)
