"""CAS service responses: XML (the CAS 3.0 schema, namespace http://www.yale.edu/tp/cas)
or JSON (``format=JSON``, CAS 3.0 §2.5.x), and the CAS 1.0 plain-text answer.

The XML is built with ElementTree, so a name or an attribute value can never break out
of its element. Failures are answered with HTTP 200, as CAS servers do: clients read
the body, and some treat any other status as a network error."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # noqa: S405 - building, never parsing

from flask import Response

NS = "http://www.yale.edu/tp/cas"
ET.register_namespace("cas", NS)

# Failure codes (CAS 3.0 §2.5.3, §2.7.2).
INVALID_REQUEST = "INVALID_REQUEST"
INVALID_TICKET_SPEC = "INVALID_TICKET_SPEC"
INVALID_TICKET = "INVALID_TICKET"
INVALID_SERVICE = "INVALID_SERVICE"
INVALID_PROXY_CALLBACK = "INVALID_PROXY_CALLBACK"
UNAUTHORIZED_SERVICE = "UNAUTHORIZED_SERVICE"
UNAUTHORIZED_SERVICE_PROXY = "UNAUTHORIZED_SERVICE_PROXY"
INTERNAL_ERROR = "INTERNAL_ERROR"


def _el(parent, name: str, text: str | None = None):
    e = ET.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        e.text = text
    return e


def _xml(root) -> Response:
    body = ET.tostring(root, encoding="unicode")
    return Response(body, 200, content_type="application/xml; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def _json(doc: dict) -> Response:
    return Response(json.dumps({"serviceResponse": doc}, ensure_ascii=False), 200,
                    content_type="application/json; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def wants_json(value: str | None) -> bool:
    return (value or "").upper() == "JSON"


def success(user: str, *, attributes: dict[str, list[str]] | None, pgt_iou: str | None,
            proxies: list[str], as_json: bool) -> Response:
    if as_json:
        body: dict = {"user": user}
        if pgt_iou:
            body["proxyGrantingTicket"] = pgt_iou
        if proxies:
            body["proxies"] = proxies
        if attributes is not None:
            body["attributes"] = attributes
        return _json({"authenticationSuccess": body})
    root = ET.Element(f"{{{NS}}}serviceResponse")
    ok = _el(root, "authenticationSuccess")
    _el(ok, "user", user)
    if attributes is not None:
        attrs = _el(ok, "attributes")
        for name, values in attributes.items():
            for value in values:
                _el(attrs, name, value)
    if pgt_iou:
        _el(ok, "proxyGrantingTicket", pgt_iou)
    if proxies:
        chain = _el(ok, "proxies")
        for p in proxies:
            _el(chain, "proxy", p)
    return _xml(root)


def failure(code: str, description: str, *, as_json: bool) -> Response:
    if as_json:
        return _json({"authenticationFailure": {"code": code, "description": description}})
    root = ET.Element(f"{{{NS}}}serviceResponse")
    e = _el(root, "authenticationFailure", description)
    e.set("code", code)
    return _xml(root)


def proxy_success(ticket: str, *, as_json: bool) -> Response:
    if as_json:
        return _json({"proxySuccess": {"proxyTicket": ticket}})
    root = ET.Element(f"{{{NS}}}serviceResponse")
    _el(_el(root, "proxySuccess"), "proxyTicket", ticket)
    return _xml(root)


def proxy_failure(code: str, description: str, *, as_json: bool) -> Response:
    if as_json:
        return _json({"proxyFailure": {"code": code, "description": description}})
    root = ET.Element(f"{{{NS}}}serviceResponse")
    e = _el(root, "proxyFailure", description)
    e.set("code", code)
    return _xml(root)


def plain(user: str | None) -> Response:
    """CAS 1.0 /validate: "yes\\nuser\\n" or "no\\n\\n"."""
    body = f"yes\n{user}\n" if user is not None else "no\n\n"
    return Response(body, 200, content_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": "no-store"})
