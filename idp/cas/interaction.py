"""CAS's side of the sign-in interaction: a ``/cas/login`` request becomes a
:class:`~idp.interaction.PendingRequest` (``protocol="cas"``), and what the checks
answer becomes a CAS response.

- ``renew`` is ``prompt=login``: a sign-in made for this request, never the SSO session;
- ``gateway`` is ``prompt=none``: the person is sent back to the service at once,
  without a ticket, whenever a page would have to be shown (CAS 3.0 §2.1.1);
- the service's registered minimum level is ``acr_values``, so step-up runs as for OIDC;
- the scopes are the client's registered ones (CAS has no scope parameter), so consent
  and the sensitive-scope rule apply exactly as for an OIDC client."""

from __future__ import annotations

from flask import redirect, render_template, url_for
from flask_babel import gettext as _

from .. import policy
from ..interaction import Needed, PendingRequest, Refused, load
from ..interaction.request import TooManyRequests, query_with_rid, register_resume

# The /cas/login parameters a pending request resumes with.
PARAMS = ("service", "renew", "gateway", "method")


def _resume(req: PendingRequest) -> str:
    return query_with_rid(url_for("cas.login"), req)


register_resume("cas", _resume)


def flag(value: str | None) -> bool:
    """A CAS boolean parameter is set by its presence; "false" (and "0") unset it."""
    return value is not None and value.strip().lower() not in ("false", "0")


def scopes_of(client) -> list[str]:
    """What a CAS client receives: its registered scopes and the sensitive scopes it is
    allowed (a service allowed ``idcard`` gets the full ID number, with consent)."""
    registered = (client.meta("scope") or "openid profile").split()
    return [*registered, *(s for s in client.allowed_sensitive_scopes or []
                           if s not in registered)]


def pending_request(client, args) -> PendingRequest:
    """The stored request this login resumes (``_rid``, only with the very parameters
    it was made from), or a new, unsaved one."""
    params = {k: args[k] for k in PARAMS if args.get(k) is not None}
    stored = load(args.get("_rid"))
    if stored is not None and stored.protocol == "cas" and stored.params == params \
            and stored.client_id == client.client_id:
        return stored
    renew = flag(params.get("renew"))
    # §2.1.1: with renew set, gateway is ignored (the person must sign in anew).
    gateway = flag(params.get("gateway")) and not renew
    prompt = ["login"] if renew else (["none"] if gateway else [])
    return PendingRequest(protocol="cas", client_id=client.client_id, scopes=scopes_of(client),
                          prompt=prompt, acr_values=client.min_level,
                          channel=policy.sign_in_channel(client), params=params)


def _refusal(title: str, detail: str, client, service: str):
    # The service is registered, so a link back to it (without a ticket) is safe.
    return render_template("cas/refused.html", title=title, detail=detail, client=client,
                           service=service), 403


def answer(outcome: Needed | Refused, req: PendingRequest, client, service: str):
    if isinstance(outcome, Needed):
        if "none" in req.prompt:
            req.finish()
            return redirect(service)  # gateway: back without a ticket
        try:
            rid = req.id or req.save()
        except TooManyRequests:
            return render_template("error.html", title=_("请求过于频繁"),
                                   detail=_("请稍后再试。")), 429
        return redirect(url_for(outcome.page, rid=rid))
    req.finish()
    if outcome.reason == "access_denied":
        return _refusal(_("您已拒绝授权"), _("未向该应用提供您的信息。"), client, service)
    if outcome.reason == "unmet":
        return _refusal(_("未达到该应用要求的认证等级"),
                        _("该应用要求更高的身份认证等级，本次登录未能达到。"), client, service)
    return _refusal(_("无法代表该组织登录"), _("您没有可代表的企业或组织。"), client, service)
