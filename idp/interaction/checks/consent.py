"""Consent to release the scopes asked for; first-party clients need none."""

from ...extensions import db
from ...models import Consent
from ..context import Context, Needed, Refused


def consent_denied(ctx: Context) -> Refused | None:
    """The person already said no on the consent page."""
    return Refused("access_denied") if ctx.request.denied else None


def _has_consent(ctx: Context) -> bool:
    if ctx.client.first_party:
        return True
    row = db.session.get(Consent, (ctx.session.person_id, ctx.client.client_id))
    if row is None or not set(ctx.scope.split()) <= set(row.scopes.split()):
        return False
    # Claims asked for by name (OIDC ``claims`` parameter) need consent of their own.
    from ...oidc.claims_request import consented, to_consent

    return consented(to_consent(ctx.request.claims, ctx.client, ctx.scope), row.scopes,
                     row.claims)


def consent(ctx: Context) -> Needed | None:
    if ctx.request.consented:
        return None
    if "consent" in ctx.request.prompt or not _has_consent(ctx):
        return Needed("consent", "authn.consent")
    return None
