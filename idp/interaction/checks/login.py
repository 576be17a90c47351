"""``prompt=login`` (CAS ``renew``, SAML ``ForceAuthn``): a sign-in made for this request."""

from ..context import Context, Needed


def prompt_login(ctx: Context) -> Needed | None:
    if "login" in ctx.request.prompt and not ctx.fresh:
        return Needed("login", "authn.login")
    return None
