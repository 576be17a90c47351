"""SAML's side of the sign-in interaction: an AuthnRequest (or an IdP-initiated sign-in)
becomes a :class:`~idp.interaction.PendingRequest`; ``ForceAuthn`` is ``prompt=login``,
``IsPassive`` is ``prompt=none``, ``RequestedAuthnContext`` (and the SP's registered
minimum level) is the level asked. What the checks answer becomes either a redirect to
the page that satisfies it, or a SAML status sent back to the SP (``NoPassive`` when a
passive request would need a page, ``RequestDenied``, ``NoAuthnContext``)."""

from __future__ import annotations

from flask import redirect, url_for

from ..authn import assurance
from ..interaction import Needed, PendingRequest, Refused, load
from ..interaction.request import TooManyRequests, register_resume
from . import responses
from .pages import error_page
from .subject import scopes_for

STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
NO_PASSIVE = STATUS + "NoPassive"
REQUEST_DENIED = STATUS + "RequestDenied"
NO_AUTHN_CONTEXT = STATUS + "NoAuthnContext"
RESPONDER = STATUS + "Responder"


def _resume(req: PendingRequest) -> str:
    return url_for("saml.sso", _rid=req.id)


register_resume("saml", _resume)


def stored(rid: str | None) -> PendingRequest | None:
    req = load(rid)
    return req if req is not None and req.protocol == "saml" else None


def _higher(a: str | None, b: str | None) -> str | None:
    return a if assurance.rank(a) >= assurance.rank(b) else b


def pending_request(sp, parsed: dict) -> PendingRequest:
    prompt = [p for p, flag in (("login", parsed["force"]), ("none", parsed["passive"])) if flag]
    level = _higher(parsed["acr"] or None, sp.min_level)
    return PendingRequest(protocol="saml", client_id=sp.client_id, scopes=scopes_for(sp),
                          prompt=prompt, acr_values=level, channel="web", params=parsed)


def answer(outcome: Needed | Refused, req: PendingRequest, sp):
    parsed = req.params
    if isinstance(outcome, Needed):
        if "none" in req.prompt:
            req.finish()
            xml = responses.failure(sp, parsed, NO_PASSIVE,
                                    "The person must interact to sign in.")
            return responses.post_form(sp, parsed, xml)
        try:
            rid = req.id or req.save()
        except TooManyRequests:
            return error_page("请求过于频繁", "请稍后再试。", 429)
        return redirect(url_for(outcome.page, rid=rid))
    req.finish()
    status, message = {
        "access_denied": (REQUEST_DENIED, "The person declined."),
        "unmet": (NO_AUTHN_CONTEXT, "The requested assurance level was not reached."),
    }.get(outcome.reason, (REQUEST_DENIED, "The person cannot act for the organisation."))
    return responses.post_form(sp, parsed, responses.failure(sp, parsed, status, message))
