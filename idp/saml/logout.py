"""SAML Single Logout, both directions, folded into the one logout.

* From us to the SPs: when a session ends anywhere (OIDC logout, CAS logout, an SP's
  SLO, an operator), :mod:`idp.single_logout` calls :func:`notify`, which sends each SAML
  SP of the session a signed ``LogoutRequest`` over the SOAP binding (back channel: the
  logout may not even happen in a browser) naming the person as that SP knows them.
* From an SP to us: its ``LogoutRequest`` (Redirect or POST, which must be signed —
  SAML Profiles §4.4.3.1, since a forged one would sign the person out) ends this
  browser's session through :func:`idp.single_logout.end_session`, which tells every
  other relying party; the SP gets a signed ``LogoutResponse``.
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from flask import current_app, g, has_app_context, redirect
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.samlp import STATUS_SUCCESS

from .. import single_logout
from ..authn import session as sso
from ..clients import find_client
from . import authn_request, responses, subject
from .metadata_import import SOAP
from .pages import error_page
from .registry import sp_by_entity
from .server import DIGEST_ALG, SIGN_ALG, engine, entity_id
from .signatures import redirect_signature_ok

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="saml-logout")
PARTIAL = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"


def _name_id(sid: str, sp, person_id: str) -> NameID | None:
    record = subject.issued(sid, sp)
    if record is not None:
        return NameID(format=record["format"], name_qualifier=entity_id(),
                      sp_name_qualifier=sp.meta("entity_id"), text=record["value"])
    # A persistent NameID can be computed again; a transient one was never kept.
    return subject.name_id(sp, person_id, NAMEID_FORMAT_PERSISTENT)


def notify(client_ids: list[str], person_id: str, sid: str) -> list:
    initiator = g.get("saml_logout_initiator") if has_app_context() else None
    cfg = current_app.config
    futures = []
    for sp in (c for c in map(find_client, client_ids) if c is not None):
        soap = next((e["location"] for e in sp.meta("saml_slo") or []
                     if e["binding"] == SOAP), None)
        nid = _name_id(sid, sp, person_id)
        subject.forget(sid, sp)
        if sp.client_id == initiator:
            continue  # it asked: it gets our LogoutResponse instead
        if soap is None:
            log.info("SAML SP %s has no SOAP logout endpoint; not notified", sp.client_id)
            continue
        server = engine(sp)
        _id, req = server.create_logout_request(
            soap, sp.meta("entity_id"), name_id=nid, sign=True, reason="urn:oasis:names:tc:"
            "SAML:2.0:logout:user", expire=None, sign_alg=SIGN_ALG, digest_alg=DIGEST_ALG)
        futures.append(_pool.submit(
            _deliver, sp.client_id, soap, _envelope(str(req)), cfg["BACKCHANNEL_LOGOUT_ATTEMPTS"],
            cfg["BACKCHANNEL_LOGOUT_BACKOFF"], cfg["BACKCHANNEL_LOGOUT_TIMEOUT"]))
    return futures


def _envelope(signed_xml: str) -> str:
    """The SOAP 1.1 envelope of the SAML SOAP binding (§3.2) around a signed message
    (wrapped as text: re-serialising it would break the signature)."""
    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", signed_xml)
    return ('<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
            f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>")


def _deliver(client_id: str, uri: str, envelope: str, attempts: int, backoff: float,
             timeout: float) -> bool:
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            resp = requests.post(uri, data=envelope.encode(), timeout=timeout, headers={
                "Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
            if resp.status_code == 200 and STATUS_SUCCESS.encode() in resp.content:
                log.info("SAML logout delivered to %s", client_id)
                return True
            reason = f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            reason = type(exc).__name__
        log.warning("SAML logout to %s failed (attempt %d/%d): %s", client_id, attempt,
                    attempts, reason)
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    log.error("SAML logout to %s abandoned after %d attempts", client_id, attempts)
    return False


single_logout.register("saml", notify)


def _reply_binding(sp) -> tuple[str, str] | None:
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        for e in sp.meta("saml_slo") or []:
            if e["binding"] == binding:
                return binding, e["response_location"] or e["location"]
    return None


def from_sp(value: str, binding: str, relay_state: str | None, query: bytes):
    """An SP's LogoutRequest: end this browser's session if it is the person the SP
    names, and answer with a signed LogoutResponse."""
    try:
        xml = authn_request.decode(value, binding)
        sp = sp_by_entity(authn_request.issuer_of(xml, "LogoutRequest"))
    except authn_request.BadRequest as exc:
        return error_page(exc.title, exc.detail)
    if sp is None:
        return error_page(*authn_request.UNKNOWN_SP)
    server = engine(sp)
    try:
        req = server.parse_logout_request(value, binding).message
    except Exception:  # noqa: BLE001 - pysaml2's many errors for bad XML or signatures
        return error_page("SAML 请求无效", "The LogoutRequest is invalid or its signature "
                          "does not verify with the service provider's key.")
    signed = (redirect_signature_ok(query, "SAMLRequest", sp.meta("saml_signing_certs") or [])
              if binding == BINDING_HTTP_REDIRECT else req.signature is not None)
    if not signed:
        return error_page("SAML 请求未签名", "A LogoutRequest must be signed by the service "
                          "provider.")
    reply = _reply_binding(sp)
    if reply is None:
        return error_page("SAML 请求无效", "The service provider has no SingleLogoutService.")
    status = STATUS_SUCCESS
    sess = sso.current()
    if sess is not None:
        record = subject.issued(sess.sid, sp)
        asked = (req.name_id.text or "") if req.name_id is not None else ""
        expected = record["value"] if record else _name_id(sess.sid, sp, sess.person_id).text
        if asked == expected:
            g.saml_logout_initiator = sp.client_id
            single_logout.end_session(sess, reason="saml_slo")
        else:
            status = PARTIAL  # not the person this browser is signed in as: left alone
    rbinding, destination = reply
    resp = server.create_logout_response(req, [rbinding], status=_status(status), sign=False)
    resp.destination = destination
    if rbinding == BINDING_HTTP_REDIRECT:
        info = server.apply_binding(rbinding, str(resp), destination, relay_state or "",
                                    response=True, sign=True, sigalg=SIGN_ALG)
        location = dict(info["headers"])["Location"]
        return redirect(location)
    signed_xml = server.sign(resp, sign_alg=SIGN_ALG, digest_alg=DIGEST_ALG)
    return responses.post_form(sp, {"acs": destination, "relay": relay_state or ""}, signed_xml)


def _status(code: str):
    from saml2.samlp import Status, StatusCode

    if code == STATUS_SUCCESS:
        return Status(status_code=StatusCode(value=STATUS_SUCCESS))
    return Status(status_code=StatusCode(value="urn:oasis:names:tc:SAML:2.0:status:Responder",
                                         status_code=StatusCode(value=code)))
