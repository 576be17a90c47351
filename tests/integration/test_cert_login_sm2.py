"""Sign-in with an SM2 certificate (GM/T 0015), verified by OpenSSL's X.509 code.

The PKI is made by the ``openssl`` command line, the way a CA running OpenSSL 3 makes it:
SM2 keys, SM2-with-SM3 signatures with the standard distinguishing ID
``1234567812345678``, an SM2 root, an SM2 intermediate that issues the citizens'
certificates (``openssl ca``, which also revokes and writes the CRLs), an unrelated SM2
root, and an impostor CA bearing the intermediate's name.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from idp.authn import cert_verify
from idp.crypto import x509_openssl
from idp.extensions import db
from idp.models import Person
from tests.helpers import CITIZEN_ID, authorize_url, follow_login, pkce_pair, query
from tests.integration.test_cert_login import (
    HEADER,
    confirm_fields,
    events,
    id_claims,
    sso_cookie,
    via_proxy,
)

ID = "1234567812345678"
OPENSSL = shutil.which("openssl")

_CONFIG = """
[ req ]
distinguished_name = dn
string_mask = utf8only
utf8 = yes
[ dn ]
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ inter_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ client_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[ email_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = emailProtection
authorityKeyIdentifier = keyid
[ policy_any ]
countryName = optional
organizationName = optional
commonName = supplied
serialNumber = optional
{cas}
"""

_CA = """
[ {name} ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = {cert}
private_key = {key}
default_md = sm3
default_days = 365
default_crl_days = 7
policy = policy_any
unique_subject = no
copy_extensions = none
preserve = yes
"""


class SM2PKI:
    """An SM2 PKI in a directory, made with ``openssl``."""

    def __init__(self, d: Path):
        self.d = d
        cas = ""
        for name in ("root", "inter", "impostor"):
            (d / name).mkdir()
            (d / name / "index.txt").write_text("")
            (d / name / "serial").write_text("1000\n")
            (d / name / "crlnumber").write_text("01\n")
            cas += _CA.format(name=name, dir=d / name, cert=d / f"{name}.pem",
                              key=d / f"{name}.key")
        (d / "openssl.cnf").write_text(_CONFIG.format(cas=cas), encoding="utf-8")
        for name in ("root", "inter", "stranger", "impostor", "citizen"):
            self.run("genpkey", "-algorithm", "SM2", "-out", f"{name}.key")
        inter_dn = "/C=CN/O=测试数字证书认证中心/CN=测试SM2个人证书CA"
        self.self_signed("root", "/C=CN/O=测试数字证书认证中心/CN=测试SM2根CA")
        self.self_signed("stranger", "/C=CN/O=其他机构/CN=其他SM2根CA")
        self.self_signed("impostor", inter_dn)  # same name as the intermediate, own key
        self.csr("inter", inter_dn)
        self.run("x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "root.key",
                 "-set_serial", "4096", "-days", "3650", "-extfile", "openssl.cnf",
                 "-extensions", "inter_ext", *self.sm3, "-out", "inter.pem")
        self.csr("citizen", f"/C=CN/CN=李四/serialNumber={CITIZEN_ID}")

    sm3 = ("-sm3", "-sigopt", f"distid:{ID}", "-vfyopt", f"distid:{ID}")

    def run(self, *args: str) -> None:
        subprocess.run([OPENSSL, *args], cwd=self.d, check=True, capture_output=True,
                       timeout=30)

    def self_signed(self, name: str, subject: str) -> None:
        self.run("req", "-config", "openssl.cnf", "-new", "-x509", "-key", f"{name}.key",
                 "-sm3", "-sigopt", f"distid:{ID}", "-utf8", "-subj", subject,
                 "-days", "3650", "-extensions", "ca_ext", "-out", f"{name}.pem")

    def csr(self, name: str, subject: str) -> None:
        self.run("req", "-config", "openssl.cnf", "-new", "-key", f"{name}.key", "-sm3",
                 "-sigopt", f"distid:{ID}", "-utf8", "-subj", subject, "-out", f"{name}.csr")

    def issue(self, out: str, *, ext: str = "client_ext", dates: tuple[str, str] | None = None,
              distid: str = ID) -> Path:
        """A citizen's certificate from the intermediate (``openssl ca``)."""
        extra = ["-startdate", dates[0], "-enddate", dates[1]] if dates else []
        self.run("ca", "-batch", "-config", "openssl.cnf", "-name", "inter",
                 "-in", "citizen.csr", "-extensions", ext, "-md", "sm3",
                 "-sigopt", f"distid:{distid}", "-vfyopt", f"distid:{ID}", *extra,
                 "-out", out)
        return self.d / out

    def crl(self, ca: str, out: str) -> bytes:
        self.run("ca", "-config", "openssl.cnf", "-name", ca, "-gencrl",
                 "-sigopt", f"distid:{ID}", "-out", out)
        return (self.d / out).read_bytes()


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="session")
def sm2pki(tmp_path_factory):
    assert OPENSSL, "the openssl command line is needed to make the SM2 test PKI"
    pki = SM2PKI(tmp_path_factory.mktemp("sm2pki"))
    d = pki.d
    certs = {
        "good": pki.issue("good.pem"),
        "expired": pki.issue("expired.pem", dates=("20200101000000Z", "20210101000000Z")),
        "not_yet_valid": pki.issue("future.pem", dates=("20990101000000Z", "20991231000000Z")),
        "revoked": pki.issue("revoked.pem"),
        "wrong_usage": pki.issue("email.pem", ext="email_ext"),
        "other_distid": pki.issue("distid.pem", distid="0000000000000000"),
    }
    pki.run("x509", "-req", "-in", "citizen.csr", "-CA", "stranger.pem", "-CAkey",
            "stranger.key", "-set_serial", "77", "-days", "365", "-extfile", "openssl.cnf",
            "-extensions", "client_ext", *pki.sm3, "-out", "untrusted.pem")
    certs["untrusted"] = d / "untrusted.pem"
    pki.run("ca", "-config", "openssl.cnf", "-name", "inter", "-revoke", "revoked.pem")
    root_crl = pki.crl("root", "root.crl")
    (d / "crl.pem").write_bytes(pki.crl("inter", "inter.crl") + root_crl)
    (d / "root-crl-only.pem").write_bytes(root_crl)
    (d / "inter-crl-only.pem").write_bytes((d / "inter.crl").read_bytes())
    (d / "forged-crl.pem").write_bytes(pki.crl("impostor", "impostor.crl") + root_crl)
    (d / "ca.pem").write_bytes((d / "root.pem").read_bytes() + (d / "inter.pem").read_bytes())
    return {"dir": d, "paths": certs, **{k: _cert(v) for k, v in certs.items()},
            "root": _cert(d / "root.pem"), "inter": _cert(d / "inter.pem")}


@pytest.fixture
def sm2certs(ctx, monkeypatch, sm2pki):
    for key, value in {"CERT_LOGIN": True, "TRUSTED_PROXIES": 1, "CERT_HEADER": HEADER,
                       "CERT_CA_FILE": str(sm2pki["dir"] / "ca.pem"),
                       "CERT_CRL_FILE": str(sm2pki["dir"] / "crl.pem"),
                       "CERT_ID_FIELD": "serialNumber"}.items():
        monkeypatch.setitem(ctx.config, key, value)
    return sm2pki


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def escaped(*certs: x509.Certificate) -> str:
    return quote(pem(*certs), safe="")


def check(pki, cert: x509.Certificate, *, crl: str | None = "crl.pem", ca: str = "ca.pem",
          **kw) -> cert_verify.CertCheck:
    return cert_verify.check(escaped(cert), ca_file=str(pki["dir"] / ca),
                             crl_file=str(pki["dir"] / crl) if crl else None, **kw)


# -- through the sign-in pages ----------------------------------------------------------

def test_sm2_certificate_signs_in_at_l5(sm2certs, client, person, rp):
    good = sm2certs["good"]
    assert good.signature_algorithm_oid == cert_verify.SM2_WITH_SM3
    verifier, challenge = pkce_pair()
    login = client.get(authorize_url(rp, acr_values="L5", code_challenge=challenge,
                                     code_challenge_method="S256")).headers["Location"]
    rid = query(login)["rid"]
    shown = client.get(f"/login/cert?rid={rid}", **via_proxy(escaped(good)))
    html = shown.get_data(as_text=True)
    # Subject read by cryptography from the SM2 certificate, shown masked.
    assert "李*" in html and "110105********002X" in html and "测试SM2个人证书CA" in html
    assert CITIZEN_ID not in html and "李四" not in html
    done = client.post("/login/cert", data=confirm_fields(shown), **via_proxy(escaped(good)))
    assert done.status_code == 302 and urlsplit(done.headers["Location"]).path == "/authorize"
    q = query(follow_login(client, done).headers["Location"])
    claims = id_claims(client, rp, q["code"], verifier)
    assert claims["acr"] == "L5" and claims["amr"] == ["sc"]
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L5"
    success = events("login.success")[-1]
    assert success.details["method"] == "cert"
    assert success.details["issuer"].startswith("CN=测试SM2个人证书CA")


def test_intermediate_may_come_with_the_leaf(sm2certs, client, person, monkeypatch, ctx):
    monkeypatch.setitem(ctx.config, "CERT_CA_FILE", str(sm2certs["dir"] / "root.pem"))
    alone = escaped(sm2certs["good"])
    assert client.get("/login/cert", **via_proxy(alone)).status_code == 403
    assert events("login.failure")[-1].details["reason"] == "untrusted"
    value = escaped(sm2certs["good"], sm2certs["inter"])
    fields = confirm_fields(client.get("/login/cert", **via_proxy(value)))
    assert client.post("/login/cert", data=fields, **via_proxy(value)).status_code == 302
    assert sso_cookie(client) is not None


@pytest.mark.parametrize("case, reason, status", [
    ("untrusted", "untrusted", 403),  # chains to another SM2 root
    ("expired", "expired", 403),
    ("not_yet_valid", "not_yet_valid", 403),
    ("revoked", "revoked", 403),
    ("wrong_usage", "wrong_usage", 403),  # emailProtection, no clientAuth
    ("other_distid", "untrusted", 403),  # signed with an ID other than GM/T's default
])
def test_refused_sm2_certificates(sm2certs, client, person, case, reason, status):
    page = client.get("/login/cert", **via_proxy(escaped(sm2certs[case])))
    assert page.status_code == status
    assert 'name="fingerprint"' not in page.get_data(as_text=True)
    assert sso_cookie(client) is None
    failure = events("login.failure")[-1]
    assert failure.details["reason"] == reason and failure.details["serial"]
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L2"


@pytest.mark.parametrize("crl_file", ["root-crl-only.pem", "forged-crl.pem"])
def test_without_the_issuers_own_crl_nobody_signs_in(sm2certs, client, person, monkeypatch,
                                                      ctx, crl_file):
    monkeypatch.setitem(ctx.config, "CERT_CRL_FILE", str(sm2certs["dir"] / crl_file))
    resp = client.get("/login/cert", **via_proxy(escaped(sm2certs["good"])))
    assert resp.status_code == 503 and 'name="fingerprint"' not in resp.get_data(as_text=True)
    assert events("login.failure")[-1].details["reason"] == "crl_unavailable"


# -- the checks themselves ---------------------------------------------------------------

def test_the_verified_path_is_returned(sm2pki):
    result = check(sm2pki, sm2pki["good"])
    assert result.ok and result.id_number == CITIZEN_ID and result.names == ["李四"]
    assert result.chain == [sm2pki["good"], sm2pki["inter"], sm2pki["root"]]
    # Without any CRL configured revocation is not checked at all.
    assert check(sm2pki, sm2pki["revoked"], crl=None).ok


def test_revocation_and_crl_signatures(sm2pki):
    revoked = check(sm2pki, sm2pki["revoked"])
    assert revoked.reason == "revoked"
    # The impostor's CRL names the intermediate but is signed by another key: OpenSSL's
    # signature check fails, and so does the standard-ID check made for SM2 CRLs.
    forged = check(sm2pki, sm2pki["revoked"], crl="forged-crl.pem")
    assert forged.reason == "crl_unavailable"
    assert forged.detail.startswith(f"OpenSSL {x509_openssl.X509_V_ERR_CRL_SIGNATURE_FAILURE} ")
    # Only the leaf's issuer must have a CRL; the root's is applied when there is one.
    assert check(sm2pki, sm2pki["good"], crl="inter-crl-only.pem").ok
    assert check(sm2pki, sm2pki["revoked"], crl="inter-crl-only.pem").reason == "revoked"
    missing = check(sm2pki, sm2pki["good"], crl="root-crl-only.pem")
    assert missing.detail.startswith(f"OpenSSL {x509_openssl.X509_V_ERR_UNABLE_TO_GET_CRL} "
                                     "at depth 0")


def test_out_of_date_crl_fails_closed(sm2pki):
    # The CRLs are good for 7 days, the certificate for a year.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    stale = check(sm2pki, sm2pki["good"], now=later)
    assert stale.reason == "crl_unavailable"
    assert stale.detail.startswith(f"OpenSSL {x509_openssl.X509_V_ERR_CRL_HAS_EXPIRED} ")
    assert check(sm2pki, sm2pki["good"], crl=None, now=later).ok


def test_bundle_of_only_the_intermediate_trusts_it(sm2pki):
    (sm2pki["dir"] / "inter-only.pem").write_bytes(pem(sm2pki["inter"]).encode())
    result = check(sm2pki, sm2pki["good"], ca="inter-only.pem", crl=None)
    assert result.ok and result.chain == [sm2pki["good"], sm2pki["inter"]]
    assert check(sm2pki, sm2pki["untrusted"], ca="inter-only.pem", crl=None).reason == \
        "untrusted"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def test_openssl_verification_time_and_purpose(sm2pki):
    good, roots = _der(sm2pki["good"]), [_der(sm2pki["root"])]
    untrusted = [_der(sm2pki["inter"])]
    assert x509_openssl.verify(good, roots=roots, untrusted=untrusted).ok
    after = sm2pki["good"].not_valid_after_utc + dt.timedelta(seconds=1)
    expired = x509_openssl.verify(good, roots=roots, untrusted=untrusted, at=after)
    assert (expired.error, expired.depth) == (x509_openssl.X509_V_ERR_CERT_HAS_EXPIRED, 0)
    # (the intermediate was made the same second: OpenSSL names it, checking top down)
    before = sm2pki["good"].not_valid_before_utc - dt.timedelta(seconds=1)
    early = x509_openssl.verify(good, roots=roots, untrusted=untrusted, at=before)
    assert early.error == x509_openssl.X509_V_ERR_CERT_NOT_YET_VALID
    future = x509_openssl.verify(_der(sm2pki["not_yet_valid"]), roots=roots,
                                 untrusted=untrusted)
    assert (future.error, future.depth) == (x509_openssl.X509_V_ERR_CERT_NOT_YET_VALID, 0)
    email = x509_openssl.verify(_der(sm2pki["wrong_usage"]), roots=roots, untrusted=untrusted)
    assert (email.error, email.depth) == (x509_openssl.X509_V_ERR_INVALID_PURPOSE, 0)
    # The CA certificate itself does not make a client certificate.
    ca = x509_openssl.verify(untrusted[0], roots=roots)
    assert ca.error == x509_openssl.X509_V_ERR_INVALID_PURPOSE
    without_inter = x509_openssl.verify(good, roots=roots)
    assert without_inter.error == x509_openssl.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY


def test_sm2_self_signature_is_checked_with_the_standard_id(sm2pki):
    assert x509_openssl.self_signed(_der(sm2pki["root"]))
    assert not x509_openssl.self_signed(_der(sm2pki["inter"]))
    assert not x509_openssl.self_signed(_der(sm2pki["other_distid"]))


def test_garbage_is_a_value_error(sm2pki):
    with pytest.raises(ValueError):
        x509_openssl.verify(b"\x30\x03\x02\x01\x01", roots=[_der(sm2pki["root"])])
    with pytest.raises(ValueError):
        x509_openssl.verify(_der(sm2pki["good"]) + b"\x00", roots=[_der(sm2pki["root"])])
