"""A SAML service provider for tests: pysaml2's SP role (Saml2Client), with its own key,
trusting only the IdP metadata served at /saml/metadata. It builds AuthnRequests and
LogoutRequests and checks Responses the way a real SP does (signature, audience,
InResponseTo, decryption)."""

from __future__ import annotations

import base64
import datetime
import os
import re
import shutil
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256


def make_keypair(directory: str, name: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
    key_file = os.path.join(directory, name + ".key")
    cert_file = os.path.join(directory, name + ".crt")
    with open(key_file, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    with open(cert_file, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


@dataclass
class TestSP:
    client: Saml2Client
    entity_id: str
    acs: str

    def metadata(self) -> bytes:
        return str(entity_descriptor(self.client.config)).encode()

    def authn_request(self, binding=BINDING_HTTP_REDIRECT, sign=False, relay_state="rs-1",
                      **kwargs) -> tuple[str, dict]:
        """(request id, {"url": …} for Redirect or {"data": form fields} for POST)."""
        req_id, req = self.client.create_authn_request(
            "http://localhost/saml/sso", binding=BINDING_HTTP_POST, sign=sign and
            binding == BINDING_HTTP_POST, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256,
            **kwargs)
        if binding == BINDING_HTTP_REDIRECT:
            info = self.client.apply_binding(binding, str(req), "http://localhost/saml/sso",
                                             relay_state, sign=sign, sigalg=SIG_RSA_SHA256)
            return req_id, {"url": dict(info["headers"])["Location"]}
        xml = req if isinstance(req, str) else str(req)
        return req_id, {"data": {"SAMLRequest": base64.b64encode(xml.encode()).decode(),
                                 "RelayState": relay_state}}

    def parse(self, saml_response: str, outstanding: dict | None):
        return self.client.parse_authn_request_response(
            saml_response, BINDING_HTTP_POST, outstanding=outstanding)


def make_sp(directory: str, idp_metadata: str, *, entity_id="https://sp.example/saml",
            acs="https://sp.example/saml/acs", sign_requests=False, encrypt=True,
            name_id_format=None) -> TestSP:
    key_file, cert_file = make_keypair(directory, re.sub(r"\W+", "_", entity_id))
    idp_md = os.path.join(directory, "idp.xml")
    with open(idp_md, "w") as fh:
        fh.write(idp_metadata)
    conf = {
        "entityid": entity_id,
        "xmlsec_binary": shutil.which("xmlsec1"),
        "key_file": key_file, "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}] if encrypt else [],
        "metadata": {"local": [idp_md]},
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "endpoints": {
                "assertion_consumer_service": [(acs, BINDING_HTTP_POST)],
                "single_logout_service": [(entity_id + "/slo", BINDING_HTTP_REDIRECT),
                                          (entity_id + "/slo/soap", BINDING_SOAP)],
            },
            "authn_requests_signed": sign_requests,
            "want_assertions_signed": True,
            "want_response_signed": True,
            "allow_unsolicited": True,
            **({"name_id_format": [name_id_format]} if name_id_format else {}),
        }},
    }
    cfg = SPConfig()
    cfg.load(conf)
    if not encrypt:
        cfg.encryption_keypairs = None
    return TestSP(Saml2Client(config=cfg), entity_id, acs)
