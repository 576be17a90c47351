"""Acting for an organisation (scope ``org``, or an organisation named in the hint):
which appointment, chosen on the selection page unless the hint leaves exactly one."""

from ... import orgs
from ..context import Context, Needed, Refused


def enterprise(ctx: Context) -> Needed | Refused | None:
    req = ctx.request
    if "org" not in ctx.scope.split() and not req.org_hint:
        return None
    options = orgs.eligible(orgs.memberships_of(ctx.session.person_id), ctx.client)
    if req.org_hint:
        options = [(m, o) for m, o in options if o.uscc == req.org_hint]
    membership = next((m for m, _o in options if m.id == req.membership_id), None)
    if membership is None and req.org_hint and len(options) == 1:
        membership = options[0][0]
    if membership is not None:
        ctx.membership = membership
        return None
    if not options:
        return Refused("org_refused", req.org_hint)
    return Needed("enterprise", "authn.select_org")
