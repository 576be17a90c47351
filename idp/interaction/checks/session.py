"""Someone must be signed in."""

from ..context import Context, Needed


def session(ctx: Context) -> Needed | None:
    return Needed("login", "authn.login") if ctx.session is None else None
