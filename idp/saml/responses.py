"""Responses to the SP's assertion consumer: signed (RSA-SHA256) assertion in a signed
Response, encrypted for the SP when its metadata has an encryption key, sent by the
HTTP-POST binding (a form the browser submits)."""

from __future__ import annotations

import base64
import time

from flask import render_template
from saml2.sdb import SessionStorage

from .server import DIGEST_ALG, SIGN_ALG, engine, entity_id, issuer


class _NoStorage(SessionStorage):
    """pysaml2 keeps every assertion it makes in process memory (for AssertionIDRequest,
    which we do not offer): that would grow without end and hold personal data."""

    def store_assertion(self, assertion, to_sign):
        return None


def _server(sp):
    server = engine(sp)
    if not isinstance(server.session_db, _NoStorage):
        server.session_db = _NoStorage()
    return server


def _pem(cert_b64: str) -> str:
    lines = [cert_b64[i:i + 64] for i in range(0, len(cert_b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def success(sp, parsed: dict, nid, identity: dict, *, acr: str | None, auth_time: int) -> str:
    """The signed Response XML."""
    server = _server(sp)
    enc = sp.meta("saml_encryption_certs") or []
    authn = {"class_ref": acr or "L2", "authn_auth": issuer(),
             "authn_instant": auth_time or int(time.time())}
    resp = server.create_authn_response(
        identity, in_response_to=parsed["id"] or None, destination=parsed["acs"],
        sp_entity_id=sp.meta("entity_id"), name_id=nid, authn=authn,
        sign_response=True, sign_assertion=True,
        encrypt_assertion=bool(enc), encrypt_cert_assertion=_pem(enc[0]) if enc else None,
        encrypt_assertion_self_contained=True, sign_alg=SIGN_ALG, digest_alg=DIGEST_ALG)
    return str(resp)


def failure(sp, parsed: dict, status: str, message: str) -> str:
    server = _server(sp)
    resp = server.create_error_response(
        parsed["id"] or None, parsed["acs"], (status, message), sign=True,
        sign_alg=SIGN_ALG, digest_alg=DIGEST_ALG)
    return str(resp)


def post_form(sp, parsed: dict, xml: str):
    """The page whose form carries the Response to the SP (submitted by a script, or by
    the person where scripts are off)."""
    payload = base64.b64encode(xml.encode() if isinstance(xml, str) else xml).decode()
    return render_template("saml/post.html", action=parsed["acs"], saml_response=payload,
                           relay_state=parsed.get("relay") or "", sp_name=sp.name,
                           idp=entity_id())
