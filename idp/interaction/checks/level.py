"""The assurance level asked for (``acr_values``): the session is raised by step-up, or,
when the person gave up there, the request ends as unmet (the ID token otherwise says the
level reached, never the level asked)."""

from ...authn import assurance
from ..context import Context, Needed, Refused


def level(ctx: Context) -> Needed | Refused | None:
    if ctx.request.unmet:
        return Refused("unmet")
    if not assurance.meets(ctx.session.acr, ctx.request.asked_level):
        return Needed("level", "stepup.page")
    return None
