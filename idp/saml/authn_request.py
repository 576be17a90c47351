"""An AuthnRequest, from either binding, attributed to its registered SP and checked.

The issuer is read first (defusedxml, no DTDs), so the SP's metadata alone — never
another SP's keys — decides the signature and the assertion consumer. What comes out is
a small dict of strings, kept in the pending request and checked again on resume.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import time
import zlib

from defusedxml import ElementTree as SafeET
from flask import current_app
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_UNSPECIFIED

from .registry import sp_by_entity
from .server import NAME_ID_FORMATS, engine
from .signatures import redirect_signature_ok

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MAX_MESSAGE = 64 * 1024
# AuthnContextClassRef values understood as our levels (besides L1–L5 themselves).
CLASS_LEVELS = {
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Password": "L2",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport": "L2",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified": None,
    **{f"L{n}": f"L{n}" for n in range(1, 6)},
}


class BadRequest(ValueError):
    """Cannot be answered to the SP (unreadable, unknown SP, bad signature): a page says why."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(detail)
        self.title, self.detail = title, detail


class StatusError(Exception):
    """Answered to the SP's assertion consumer with a SAML error status."""

    def __init__(self, status: str, message: str, parsed: dict) -> None:
        super().__init__(message)
        self.status, self.parsed = status, parsed


def decode(value: str, binding: str) -> bytes:
    if not value or len(value) > MAX_MESSAGE * 2:
        raise BadRequest("无法读取 SAML 请求", "SAMLRequest is missing or too long.")
    try:
        raw = base64.b64decode(value, validate=False)
        if binding == BINDING_HTTP_REDIRECT:
            inflater = zlib.decompressobj(-15)
            raw = inflater.decompress(raw, MAX_MESSAGE)
            if inflater.unconsumed_tail:
                raise ValueError("too large")
    except (binascii.Error, zlib.error, ValueError):
        raise BadRequest("无法读取 SAML 请求", "SAMLRequest is not valid base64/DEFLATE.") from None
    return raw


def issuer_of(xml: bytes, tag: str = "AuthnRequest") -> str:
    try:
        root = SafeET.fromstring(xml)
    except Exception:  # noqa: BLE001 - ParseError and defusedxml's refusals alike
        raise BadRequest("无法读取 SAML 请求", "The SAML message is not well-formed XML.") from None
    if root.tag != f"{{{SAMLP}}}{tag}":
        raise BadRequest("无法读取 SAML 请求", f"Expected a samlp:{tag}.")
    el = root.find(f"{{{SAML}}}Issuer")
    text = (el.text or "").strip() if el is not None else ""
    if not text:
        raise BadRequest("无法读取 SAML 请求", "The request names no Issuer.")
    return text


UNKNOWN_SP = ("未注册的服务提供方",
              "这个网站没有在统一身份认证平台登记，无法为它登录。请联系该网站的管理员。")


def unknown_sp():
    return BadRequest(*UNKNOWN_SP)


def _level(authn_context) -> str | None:
    """RequestedAuthnContext as the least level to reach (minimum/better/exact alike: the
    session's level is never lowered for an SP; ``maximum`` asks nothing more)."""
    if authn_context is None or authn_context.comparison == "maximum":
        return None
    refs = [(r.text or "").strip() for r in authn_context.authn_context_class_ref or []]
    levels = [CLASS_LEVELS[r] for r in refs if r in CLASS_LEVELS]
    if refs and not levels:
        raise LookupError("none of the requested authentication contexts is supported")
    known = sorted(v for v in levels if v)
    return known[0] if known else None


def _acs(sp, req) -> str | None:
    acs = sp.meta("saml_acs") or []
    if req.protocol_binding and req.protocol_binding != BINDING_HTTP_POST:
        return None
    if req.assertion_consumer_service_url:
        url = req.assertion_consumer_service_url
        return url if any(e["location"] == url for e in acs) else None
    if req.assertion_consumer_service_index is not None:
        return next((e["location"] for e in acs
                     if e["index"] == req.assertion_consumer_service_index), None)
    return next((e["location"] for e in acs if e["default"]), acs[0]["location"])


def _name_id_format(sp, req) -> str:
    asked = req.name_id_policy.format if req.name_id_policy is not None else None
    if asked in (None, "", NAMEID_FORMAT_UNSPECIFIED):
        listed = [f for f in sp.meta("saml_name_id_formats") or [] if f in NAME_ID_FORMATS]
        return listed[0] if listed else NAMEID_FORMAT_PERSISTENT
    if asked in (NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT):
        return asked
    raise LookupError(asked)


def _fresh(issue_instant: str | None) -> bool:
    try:
        issued = calendar.timegm(time.strptime((issue_instant or "")[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return False
    skew = int(current_app.config["SAML_CLOCK_SKEW"])
    return time.time() - int(current_app.config["AUTH_REQUEST_TTL"]) - skew <= issued \
        <= time.time() + skew


def parse(value: str, binding: str, relay_state: str | None, query: bytes) -> tuple[object, dict]:
    """(the SP, what the request asks) or BadRequest / StatusError."""
    xml = decode(value, binding)
    sp = sp_by_entity(issuer_of(xml))
    if sp is None:
        raise unknown_sp()
    server = engine(sp)
    try:
        req = server.parse_authn_request(value, binding).message
    except Exception:  # noqa: BLE001 - pysaml2 raises many kinds for a bad signature/schema
        raise BadRequest("SAML 请求无效", "The AuthnRequest is invalid or its signature "
                         "does not verify with the service provider's key.") from None
    if sp.meta("saml_authn_requests_signed"):
        signed = (redirect_signature_ok(query, "SAMLRequest", sp.meta("saml_signing_certs") or [])
                  if binding == BINDING_HTTP_REDIRECT else req.signature is not None)
        if not signed:
            raise BadRequest("SAML 请求未签名", "This service provider must sign its "
                             "AuthnRequests, and this one carries no valid signature.")
    if req.version != "2.0" or not _fresh(req.issue_instant):
        raise BadRequest("SAML 请求无效", "The AuthnRequest is not SAML 2.0 or is too old.")
    acs = _acs(sp, req)
    if acs is None:
        raise BadRequest("SAML 请求无效", "The assertion consumer service asked for is not "
                         "in the service provider's registered metadata (HTTP-POST).")
    parsed = {"id": req.id, "acs": acs, "relay": relay_state or "",
              "force": "1" if req.force_authn in ("true", "1", True) else "",
              "passive": "1" if req.is_passive in ("true", "1", True) else ""}
    try:
        parsed["fmt"] = _name_id_format(sp, req)
    except LookupError:
        raise StatusError("urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy",
                          "NameID format not supported", parsed) from None
    try:
        parsed["acr"] = _level(req.requested_authn_context) or ""
    except LookupError:
        raise StatusError("urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext",
                          "authentication context not supported", parsed) from None
    return sp, parsed


def unsolicited(sp, relay_state: str | None) -> dict:
    """IdP-initiated sign-in: no request, the SP's default assertion consumer."""
    acs = sp.meta("saml_acs") or []
    loc = next((e["location"] for e in acs if e["default"]), acs[0]["location"])
    listed = [f for f in sp.meta("saml_name_id_formats") or [] if f in NAME_ID_FORMATS]
    return {"id": "", "acs": loc, "relay": relay_state or "", "force": "", "passive": "",
            "fmt": listed[0] if listed else NAMEID_FORMAT_PERSISTENT, "acr": ""}
