"""``prompt=create`` (OpenID Connect "Initiating User Registration" 1.0): the relying
party wants the person to create an account, so the registration page comes instead of
the sign-in page. It is satisfied by a session started for this request — made by
registering, or by signing in from the registration page's "已有账号" link, which the
specification allows — so the request then resumes and issues as after any sign-in."""

from flask import current_app

from ..context import Context, Needed


def registration(ctx: Context) -> Needed | None:
    if "create" in ctx.request.prompt and not ctx.fresh \
            and current_app.config.get("REGISTRATION_OPEN", True):
        return Needed("create", "registration.page")
    return None
