"""A SAML-protected demo website beside the OpenID Connect and CAS ones: signed in on
any of them, this site signs in by itself (a passive AuthnRequest on arrival, answered
without a page); logging out anywhere ends it too (the provider's SOAP LogoutRequest),
and logging out here ends the others (SP-initiated Single Logout).

It is an ordinary SAML 2.0 service provider built on pysaml2's SP role (Saml2Client):
signed AuthnRequests over HTTP-Redirect, the signed (and encrypted) Response checked
against the provider's /saml/metadata, fetched on first use. Its key and certificate
are made by ``idp init --demo`` into the instance folder."""

from __future__ import annotations

import datetime
import os
import secrets
import shutil
import threading

import requests
from flask import Flask, redirect, render_template_string, request, session
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256
from werkzeug.serving import make_server

from .urls import demo_site_url

SAML_SITE = {"key": "estate", "client_id": "city-real-estate-saml", "name": "市不动产登记中心",
             "port_offset": 4}

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ name }}</title>
<style>body{font-family:system-ui,"Microsoft YaHei",sans-serif;margin:0;background:#f6f7f9}
header{background:#5b2a86;color:#fff;padding:1rem}main{max-width:32rem;margin:1rem auto;
background:#fff;padding:1.5rem;border-radius:8px}a.b{display:inline-block;padding:.7rem 1.4rem;
background:#5b2a86;color:#fff;border-radius:6px;text-decoration:none}</style></head><body>
<header><strong>{{ name }}</strong>（SAML 2.0 接入）</header><main>
{% if user %}<p id="status" data-state="signed-in">已登录：{{ user.name }}（{{ user.number }}）</p>
<p>认证等级 acr：<code>{{ user.acr }}</code></p>
<p><a class="b" id="logout" href="/logout">退出登录</a></p>
{% else %}<p id="status" data-state="signed-out">未登录</p>
<p><a class="b" id="login" href="/login">通过统一身份认证平台登录</a></p>{% endif %}
</main></body></html>"""

_SOAP_OK = ('<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
            "<SOAP-ENV:Body>{}</SOAP-ENV:Body></SOAP-ENV:Envelope>")


def _files(instance_path: str) -> tuple[str, str]:
    return (os.path.join(instance_path, "demo_saml_sp.key"),
            os.path.join(instance_path, "demo_saml_sp.crt"))


def _make_keys(instance_path: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key_file, cert_file = _files(instance_path)
    if os.path.exists(key_file) and os.path.exists(cert_file):
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "demo-saml-sp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    with open(cert_file, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))


def sp_config(issuer: str, instance_path: str, idp_metadata_file: str | None = None) -> SPConfig:
    base = demo_site_url(issuer, SAML_SITE)
    key_file, cert_file = _files(instance_path)
    conf = {
        "entityid": base + "/metadata",
        "xmlsec_binary": shutil.which("xmlsec1"),
        "key_file": key_file, "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "endpoints": {
                "assertion_consumer_service": [(base + "/acs", BINDING_HTTP_POST)],
                "single_logout_service": [(base + "/slo", BINDING_HTTP_REDIRECT),
                                          (base + "/slo/soap", BINDING_SOAP)],
            },
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "authn_requests_signed": True, "want_assertions_signed": True,
            "want_response_signed": True, "logout_requests_signed": True,
        }},
    }
    if idp_metadata_file:
        conf["metadata"] = {"local": [idp_metadata_file]}
    cfg = SPConfig()
    cfg.load(conf)
    return cfg


def seed_saml_site(issuer: str, instance_path: str) -> dict:
    """Register the demo SP (``idp init --demo``), again when the issuer's port moved."""
    from ..clients import forget_client
    from ..extensions import db
    from ..models import Client
    from ..saml.registry import register_sp

    _make_keys(instance_path)
    metadata = str(entity_descriptor(sp_config(issuer, instance_path))).encode()
    # From the database, not find_client's few-second cache of detached rows: a
    # registration changed or removed a moment ago is what this must compare with.
    row = db.session.scalar(db.select(Client).where(Client.client_id == SAML_SITE["client_id"]))
    if row is not None and row.meta("saml_metadata") != metadata.decode():
        db.session.delete(row)
        db.session.commit()
        forget_client(SAML_SITE["client_id"])
        row = None
    if row is None:
        register_sp(metadata, client_id=SAML_SITE["client_id"], name=SAML_SITE["name"],
                    first_party=True)
    return {"name": SAML_SITE["name"], "url": demo_site_url(issuer, SAML_SITE),
            "protocol": "saml"}


def make_saml_site(issuer: str, instance_path: str) -> Flask:
    app = Flask("demo-saml")
    app.secret_key = secrets.token_hex(32)
    app.config["SESSION_COOKIE_NAME"] = "rp_saml"
    logged_out: set[str] = set()  # NameIDs the provider's SOAP logout ended
    state: dict = {}
    lock = threading.Lock()

    def client() -> Saml2Client:
        with lock:
            if "client" not in state:  # the provider serves its metadata once it runs
                md = requests.get(issuer + "/saml/metadata", timeout=10)
                md.raise_for_status()
                path = os.path.join(instance_path, "demo_saml_idp.xml")
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(md.text)
                state["client"] = Saml2Client(config=sp_config(issuer, instance_path, path))
            return state["client"]

    def current_user():
        user = session.get("user")
        if user and user["name_id"] in logged_out:
            session.clear()
            return None
        return user

    def authn(passive: bool):
        req_id, info = client().prepare_for_authenticate(
            entityid=issuer + "/saml/metadata", relay_state="/", binding=BINDING_HTTP_REDIRECT,
            sign=True, sigalg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256,
            is_passive="true" if passive else None)
        session["outstanding"] = req_id
        return redirect(dict(info["headers"])["Location"])

    @app.get("/")
    def home():
        user = current_user()
        if user is None and not session.get("passive_tried"):
            session["passive_tried"] = True
            return authn(passive=True)  # signed in elsewhere? no page is shown
        return render_template_string(PAGE, name=SAML_SITE["name"], user=user)

    @app.get("/login")
    def login():
        return authn(passive=False)

    @app.post("/acs")
    def acs():
        outstanding = {session.pop("outstanding", ""): "/"}
        try:
            resp = client().parse_authn_request_response(
                request.form.get("SAMLResponse", ""), BINDING_HTTP_POST, outstanding=outstanding)
        except Exception:  # noqa: BLE001 - NoPassive and any refusal: stay signed out
            return redirect("/")
        ava = resp.ava
        session["user"] = {"name": (ava.get("name") or [""])[0],
                           "number": (ava.get("id_number_masked") or [""])[0],
                           "acr": (ava.get("acr") or [""])[0], "name_id": resp.name_id.text,
                           "name_id_format": resp.name_id.format}
        return redirect("/")

    @app.get("/logout")
    def logout():
        user = session.pop("user", None)
        session["passive_tried"] = True
        if not user:
            return redirect("/")
        from saml2.saml import NameID

        nid = NameID(format=user["name_id_format"], text=user["name_id"])
        dest = issuer + "/saml/slo"
        _id, req = client().create_logout_request(dest, issuer + "/saml/metadata",
                                                  name_id=nid, sign=False)
        info = client().apply_binding(BINDING_HTTP_REDIRECT, str(req), dest, "/", sign=True,
                                      sigalg=SIG_RSA_SHA256)
        return redirect(dict(info["headers"])["Location"])

    @app.get("/slo")
    def slo_return():
        return redirect("/")  # the provider's LogoutResponse: signed out there too

    @app.post("/slo/soap")
    def slo_soap():
        try:
            req = client().parse_logout_request(request.get_data(as_text=True), BINDING_SOAP)
        except Exception:  # noqa: BLE001 - a forged or broken request changes nothing
            return "", 400
        logged_out.add(req.message.name_id.text)
        resp = client().create_logout_response(req.message, [BINDING_SOAP], sign=True,
                                               sign_alg=SIG_RSA_SHA256)
        body = str(resp).split("?>", 1)[-1]
        return _SOAP_OK.format(body), 200, {"Content-Type": "text/xml; charset=utf-8"}

    return app


def start_saml_site(issuer: str, host: str, instance_path: str) -> str:
    url = demo_site_url(issuer, SAML_SITE)
    port = int(url.rsplit(":", 1)[1])
    try:
        server = make_server(host, port, make_saml_site(issuer, instance_path), threaded=True)
    except OSError as exc:  # the port is taken: the provider and the other sites still run
        return f"demo site {SAML_SITE['name']} (SAML) not started: port {port}: {exc.strerror}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"demo site {SAML_SITE['name']} (SAML): {url}"
