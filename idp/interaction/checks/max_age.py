"""``max_age`` (OIDC Core §3.1.2.1): a sign-in no older than the relying party allows."""

import time

from ..context import Context, Needed


def max_age(ctx: Context) -> Needed | None:
    limit = ctx.request.max_age
    if limit is None or ctx.fresh:
        return None
    if time.time() - ctx.session.auth_time > limit:
        return Needed("login", "authn.login")
    return None
