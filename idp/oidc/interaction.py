"""OpenID Connect's side of the sign-in interaction: an authorization request becomes a
:class:`~idp.interaction.PendingRequest`, and what the checks answer becomes an OAuth
response (a redirect to the page that satisfies it, or the error ``prompt=none`` asks
for)."""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core.errors import (
    AccountSelectionRequiredError,
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
)
from flask import redirect, render_template, url_for

from .. import orgs, policy
from ..errors import TemporarilyUnavailableError, UnmetAuthenticationRequirementsError
from ..interaction import Needed, PendingRequest, Refused, load
from ..interaction.request import TooManyRequests, query_with_rid, register_resume
from . import jarm
from .claims_request import claims_acr, parse_claims, requested_sub
from .subject import subject_for
from .tokens import issuer

# Under prompt=none, what each kind of interaction becomes (OIDC Core §3.1.2.6).
_NONE_ERRORS = {
    "login": LoginRequiredError,
    "level": InteractionRequiredError,
    "consent": ConsentRequiredError,
    "enterprise": AccountSelectionRequiredError,
    "create": LoginRequiredError,  # unreachable: Authlib refuses "none" with another value
}


def _resume(req: PendingRequest) -> str:
    # A pushed or signed request resumes by its reference alone (the parameters stay in
    # the sealed record): a request_uri is not used a second time, nor are pushed
    # parameters put in the browser's address bar.
    for via in ("request_uri", "request"):
        if via in req.params:
            return url_for("oidc.authorize", client_id=req.client_id, **{via: req.params[via]},
                           _rid=req.id)
    return query_with_rid(url_for("oidc.authorize"), req)


register_resume("oidc", _resume)


def _max_age(value: str | None, redirect_uri: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequestError("'max_age' must be a whole number of seconds.",
                                  redirect_uri=redirect_uri) from None


def pending_request(grant) -> PendingRequest:
    """The stored request this authorization resumes (``_rid``), or a new, unsaved one.
    A stored request resumes only with the very parameters it was made from, so the
    decisions recorded on it (consent, organisation) never apply to another request."""
    params = {k: v for k, v in grant.request.payload.data.items() if k != "_rid"}
    redirect_uri = grant.redirect_uri
    via = getattr(grant.request, "idp_via", None)
    if via is not None:
        params[via[0]] = via[1]  # how it came (idp.oidc.request_object), to resume by
    jarm.check_mode(params.get("response_mode"), redirect_uri)
    claims = parse_claims(params.get("claims"), redirect_uri)
    stored = load(grant.request.payload.data.get("_rid"))
    if stored is not None and stored.protocol == "oidc" and stored.params == params:
        return stored
    hint = params.get("login_hint") or None
    client = grant.client
    return PendingRequest(
        protocol="oidc", client_id=client.client_id,
        scopes=(grant.request.payload.scope or "").split(),
        prompt=(params.get("prompt") or "").split(),
        max_age=_max_age(params.get("max_age"), redirect_uri), claims=claims,
        acr_values=claims_acr(claims) or params.get("acr_values"), login_hint=hint,
        org_hint=orgs.org_hint(hint), channel=policy.sign_in_channel(client), params=params)


def check_subject(req: PendingRequest, grant, person) -> None:
    """OIDC Core §5.5.1: with ``sub`` asked for by value, tokens only for that subject."""
    wanted = requested_sub(req.claims)
    if wanted is not None and subject_for(grant.client, person.id) != wanted:
        req.finish()
        raise LoginRequiredError(
            description="The signed-in person is not the subject the 'claims' parameter "
                        "asks for.", redirect_uri=grant.redirect_uri)


def answer(outcome: Needed | Refused, req: PendingRequest, grant, server):
    """The response for a check that is not satisfied (raises the OAuth errors)."""
    if isinstance(outcome, Needed):
        if "none" in req.prompt:
            raise _NONE_ERRORS[outcome.prompt](redirect_uri=grant.redirect_uri)
        try:
            rid = req.id or req.save()
        except TooManyRequests:
            raise TemporarilyUnavailableError(redirect_uri=grant.redirect_uri) from None
        return redirect(url_for(outcome.page, rid=rid))
    req.finish()
    if outcome.reason == "access_denied":
        return server.create_authorization_response(grant=grant, grant_user=None)
    if outcome.reason == "unmet":
        raise UnmetAuthenticationRequirementsError(redirect_uri=grant.redirect_uri)
    return org_refusal(grant, outcome.detail)


def org_refusal(grant, uscc: str | None):
    """The person cannot act for the organisation asked for (or for any): say so plainly,
    and let them take the refusal back to the application as access_denied."""
    back = add_params_to_uri(grant.redirect_uri, [
        ("error", "access_denied"),
        ("error_description", "The person cannot act for the requested organisation."),
        *([("state", grant.request.payload.state)] if grant.request.payload.state else []),
        ("iss", issuer())])
    return render_template("org_refused.html", uscc=uscc, client=grant.client, back=back), 403
