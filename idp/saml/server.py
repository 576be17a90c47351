"""The SAML 2.0 protocol engine: pysaml2, configured from our settings and one SP.

Why pysaml2 and not python3-saml: python3-saml (OneLogin) is a toolkit for *service
providers* — it builds AuthnRequests and checks Responses, but has no identity-provider
side (parsing AuthnRequests as an IdP, building and signing assertions, NameID
policies, encrypting for an SP's key). pysaml2 implements both roles of SAML 2.0 Core,
Bindings and Profiles (Redirect, POST, SOAP; SLO; encrypted assertions; metadata), is
maintained by the IdentityPython project and signs through xmlsec1 — the same
libxmlsec1 that python3-saml binds, called as a process. Its XML signature checks pin
the reference to the signed element's ID (the fix for CVE-2020-5390/5401 wrapping).

One engine is built per SP with that SP's metadata only: a request is attributed to its
issuer first, so no other SP's keys can vouch for it.
"""

from __future__ import annotations

import logging
import shutil
import threading

from flask import current_app
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP
from saml2.attribute_converter import AttributeConverter
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from . import keys

# pysaml2 logs whole messages (NameIDs, attribute values) at debug and info.
logging.getLogger("saml2").setLevel(logging.WARNING)

SIGN_ALG = SIG_RSA_SHA256
NAME_FORMAT_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
DIGEST_ALG = DIGEST_SHA256
NAME_ID_FORMATS = (NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT)
_lock = threading.Lock()
_engines: dict[tuple, Server] = {}


def issuer() -> str:
    return current_app.config["ISSUER"].rstrip("/")


def entity_id() -> str:
    """Our entity ID: the metadata's own URL, as is customary."""
    return issuer() + "/saml/metadata"


def endpoints() -> dict[str, str]:
    base = issuer() + "/saml"
    return {"sso": base + "/sso", "slo": base + "/slo", "slo_soap": base + "/slo/soap"}


def xmlsec_binary() -> str:
    """SAML_XMLSEC_BINARY as a path (pysaml2 wants one; the setting may be a bare name)."""
    name = current_app.config["SAML_XMLSEC_BINARY"]
    return shutil.which(name) or name


def _config(sp_metadata: list[str]) -> IdPConfig:
    files = keys.key_files()
    ep = endpoints()
    lifetime = int(current_app.config["SAML_ASSERTION_LIFETIME"])
    conf = {
        "entityid": entity_id(),
        "name": "统一身份认证平台",
        "xmlsec_binary": xmlsec_binary(),
        "key_file": files.key_file,
        "cert_file": files.cert_file,
        "encryption_keypairs": [{"key_file": files.key_file, "cert_file": files.cert_file}],
        "metadata": {"inline": sp_metadata},
        "allow_unknown_attributes": True,
        "delete_tmpfiles": True,
        "accepted_time_diff": int(current_app.config["SAML_CLOCK_SKEW"]),
        "signing_algorithm": SIGN_ALG,
        "digest_algorithm": DIGEST_ALG,
        "service": {"idp": {
            "endpoints": {
                "single_sign_on_service": [(ep["sso"], BINDING_HTTP_REDIRECT),
                                           (ep["sso"], BINDING_HTTP_POST)],
                "single_logout_service": [(ep["slo"], BINDING_HTTP_REDIRECT),
                                          (ep["slo"], BINDING_HTTP_POST),
                                          (ep["slo_soap"], BINDING_SOAP)],
            },
            "name_id_format": list(NAME_ID_FORMATS),
            # Checked per SP (its metadata's AuthnRequestsSigned) in idp.saml.requests.
            "want_authn_requests_signed": False,
            "sign_assertion": True,
            "sign_response": True,
            "policy": {"default": {"lifetime": {"seconds": lifetime},
                                   "attribute_restrictions": None,
                                   "name_form": NAME_FORMAT_BASIC}},
            "subject_data": ("dict", None),
        }},
    }
    cfg = IdPConfig()
    cfg.load(conf)
    # Attribute names go out as we name them (the same as CAS's and OIDC's claims), not
    # rewritten by pysaml2's built-in maps (its "basic" map turns name into
    # urn:mace:dir:attribute-def:name).
    plain = AttributeConverter(NAME_FORMAT_BASIC)
    plain._to, plain._fro = {}, {}  # no map: each attribute keeps its own name
    cfg.attribute_converters = [plain]
    return cfg


def engine(sp=None) -> Server:
    """A pysaml2 server knowing only ``sp`` (a SAML client; None: no SP at all)."""
    files = keys.key_files()
    xml = sp.meta("saml_metadata") if sp is not None else None
    key = (files.kid, current_app.config["ISSUER"], sp.client_id if sp else None, xml)
    with _lock:
        hit = _engines.get(key)
    if hit is not None:
        return hit
    server = Server(config=_config([xml] if xml else []))
    with _lock:
        if len(_engines) > 256:
            _engines.clear()
        _engines[key] = server
    return server
