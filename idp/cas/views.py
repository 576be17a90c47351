"""The CAS 3.0 endpoints under ``/cas``: login, logout, the validations (1.0 ``validate``,
2.0 ``serviceValidate``/``proxyValidate``, 3.0 ``p3/…`` with attributes) and ``proxy``."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from authlib.common.urls import add_params_to_uri
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit, interaction, policy, single_logout
from ..authn import session as sso
from ..authn.assurance import meets
from ..clients import find_client
from ..extensions import db
from ..interaction.request import TooManyRequests, local
from ..models import Person
from . import attributes as attrs
from . import interaction as cas_interaction
from . import logout as _logout  # noqa: F401 - registers CAS single logout
from . import proxy, registry, tickets
from . import responses as out
from .tickets import PGT, PT, ST, Ticket

bp = Blueprint("cas", __name__, url_prefix="/cas")


def _shown_service(service: str) -> str:
    """A service URL for the audit log and pages: without its query, which may carry
    anything the service put there."""
    try:
        parts = urlsplit(service)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    except ValueError:
        return "(malformed)"


def _unknown_service(service: str | None):
    return render_template("cas/unknown_service.html",
                           service=_shown_service(service) if service else None), 400


@bp.get("/login")
def login():
    """CAS 3.0 §2.1: sign in through the shared interaction, then back to the service
    with a service ticket. An unregistered service gets a page, never a redirect."""
    args = request.args
    service = args.get("service")
    sess = sso.current()
    if not service:
        # No service: sign in (or show that one is signed in), for CAS clients that send
        # people to the server's own login page first.
        if sess is not None:
            return render_template("cas/signed_in.html")
        try:
            rid = local(next=url_for("cas.login")).id
        except TooManyRequests:
            return render_template("error.html", title=_("请求过于频繁"),
                                   detail=_("请稍后再试。")), 429
        return redirect(url_for("authn.login", rid=rid))
    client = registry.client_for(service)
    if client is None:
        return _unknown_service(service)
    req = cas_interaction.pending_request(client, args)
    ctx = interaction.Context(req, sess, client)
    outcome = interaction.evaluate(ctx)
    if outcome is not None:
        return cas_interaction.answer(outcome, req, client, service)
    new_login = ctx.fresh
    done = interaction.complete(ctx, policy.token_channel(client, sess.channel))
    ticket = tickets.issue(Ticket(
        kind=ST, client_id=client.client_id, service=service, person_id=sess.person_id,
        sid=sess.sid, auth_time=sess.auth_time, scope=ctx.scope, acr=sess.acr,
        amr=list(sess.amr), channel=done.channel,
        membership_id=done.membership.id if done.membership else None, new_login=new_login))
    tickets.remember_for_logout(sess.sid, client.client_id, service, ticket)
    audit.record("cas.ticket", actor=sess.person_id, subject=sess.person_id,
                 client_id=client.client_id,
                 details={"service": _shown_service(service), "acr": sess.acr,
                          "channel": done.channel, "scope": ctx.scope, "renew": new_login})
    if (args.get("method") or "").upper() == "POST":
        return render_template("cas/post.html", service=service, ticket=ticket, client=client)
    return redirect(add_params_to_uri(service, [("ticket", ticket)]))


def _alive(t: Ticket) -> Person | None:
    """The person, if the sign-in the ticket came from still stands (not logged out in
    the seconds since, not locked or merged)."""
    if not any(s.sid == t.sid for s in sso.sessions_of(t.person_id)):
        return None
    person = db.session.get(Person, t.person_id)
    return person if person is not None and person.status == "active" else None


def _validate(*, version: int, proxies_allowed: bool):
    args = request.args
    as_json = out.wants_json(args.get("format"))
    service, ticket = args.get("service"), args.get("ticket")
    if not service or not ticket:
        return out.failure(out.INVALID_REQUEST,
                           "'service' and 'ticket' parameters are both required",
                           as_json=as_json)
    if not tickets.plausible(ticket, (ST, PT)):
        return out.failure(out.INVALID_TICKET_SPEC, "not a service or proxy ticket",
                           as_json=as_json)
    t = tickets.take(ticket)  # used up now, whatever follows (§3.1.1)
    if t is None:
        return out.failure(out.INVALID_TICKET, f"ticket {ticket} not recognized",
                           as_json=as_json)
    fail = _refusal(t, service, proxies_allowed)
    if fail:
        code, text = fail
        audit.record("cas.validate.refused", actor=t.client_id, subject=t.person_id,
                     client_id=t.client_id, details={"code": code})
        return out.failure(code, text, as_json=as_json)
    client, person = find_client(t.client_id), _alive(t)
    pgt_iou = None
    pgt_url = args.get("pgtUrl")
    if pgt_url:
        try:
            pgt_iou = proxy.grant(pgt_url, client, t)
        except proxy.CallbackRefused as exc:
            return out.failure(out.INVALID_PROXY_CALLBACK, str(exc), as_json=as_json)
    audit.record("cas.validate", actor=client.client_id, subject=person.id,
                 client_id=client.client_id,
                 details={"version": version, "kind": t.kind, "proxied": bool(t.proxies),
                          "pgt": bool(pgt_iou)})
    return out.success(attrs.user(client, t),
                       attributes=attrs.attributes(client, person, t) if version >= 3 else None,
                       pgt_iou=pgt_iou, proxies=t.proxies, as_json=as_json)


def _refusal(t: Ticket, service: str, proxies_allowed: bool) -> tuple[str, str] | None:
    if t.kind == PT and not proxies_allowed:
        return (out.INVALID_TICKET_SPEC,
                "a proxy ticket was passed to serviceValidate; use proxyValidate")
    if t.service != service:
        # The ticket is used up all the same, so a stolen one is worth one guess.
        return out.INVALID_SERVICE, "the ticket was not issued for this service"
    client = find_client(t.client_id)
    if client is None or client.protocol != "cas":
        return out.INVALID_SERVICE, "the service is no longer registered"
    if cas_interaction.flag(request.args.get("renew")) and not t.new_login:
        return out.INVALID_TICKET, "the ticket did not come from a new sign-in (renew)"
    if _alive(t) is None:
        return out.INVALID_TICKET, "the sign-in this ticket came from has ended"
    return None


@bp.get("/serviceValidate")
def service_validate():
    return _validate(version=2, proxies_allowed=False)


@bp.get("/proxyValidate")
def proxy_validate():
    return _validate(version=2, proxies_allowed=True)


@bp.get("/p3/serviceValidate")
def p3_service_validate():
    return _validate(version=3, proxies_allowed=False)


@bp.get("/p3/proxyValidate")
def p3_proxy_validate():
    return _validate(version=3, proxies_allowed=True)


@bp.get("/validate")
def validate_v1():
    """CAS 1.0: "yes\\nuser\\n" or "no\\n\\n"; service tickets only."""
    service, ticket = request.args.get("service"), request.args.get("ticket")
    if not service or not tickets.plausible(ticket, (ST,)):
        return out.plain(None)
    t = tickets.take(ticket)
    if t is None or _refusal(t, service, proxies_allowed=False):
        return out.plain(None)
    client = find_client(t.client_id)
    audit.record("cas.validate", actor=client.client_id, subject=t.person_id,
                 client_id=client.client_id, details={"version": 1, "kind": t.kind})
    return out.plain(attrs.user(client, t))


@bp.get("/proxy")
def proxy_ticket():
    """CAS 3.0 §2.7: a proxy ticket for ``targetService`` from a proxy-granting ticket."""
    args = request.args
    as_json = out.wants_json(args.get("format"))
    pgt_id, target = args.get("pgt"), args.get("targetService")
    if not pgt_id or not target:
        return out.proxy_failure(out.INVALID_REQUEST,
                                 "'pgt' and 'targetService' parameters are both required",
                                 as_json=as_json)
    pgt = tickets.granting(pgt_id) if tickets.plausible(pgt_id, (PGT,)) else None
    if pgt is None or _alive(pgt) is None:
        return out.proxy_failure(out.INVALID_TICKET, f"pgt {pgt_id} not recognized",
                                 as_json=as_json)
    client = registry.client_for(target)
    if client is None:
        return out.proxy_failure(out.UNAUTHORIZED_SERVICE,
                                 "the target service is not registered", as_json=as_json)
    if not meets(pgt.acr, client.min_level):
        return out.proxy_failure(out.UNAUTHORIZED_SERVICE,
                                 "the sign-in does not reach the level the target service "
                                 "requires", as_json=as_json)
    # The target sees no more than the proxy was given, and no more than it may see.
    scope = client.get_allowed_scope(pgt.scope)
    pt = tickets.issue(Ticket(
        kind=PT, client_id=client.client_id, service=target, person_id=pgt.person_id,
        sid=pgt.sid, auth_time=pgt.auth_time, scope=scope, acr=pgt.acr, amr=pgt.amr,
        channel=pgt.channel, membership_id=pgt.membership_id, new_login=False,
        proxies=pgt.proxies))
    audit.record("cas.proxy", actor=pgt.client_id, subject=pgt.person_id,
                 client_id=client.client_id,
                 details={"service": _shown_service(target), "proxies": len(pgt.proxies)})
    return out.proxy_success(pt, as_json=as_json)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """CAS 3.0 §2.3: end the SSO session — every relying party of it, OIDC, CAS and SAML
    alike. A bare link does not sign anyone out (as for OIDC logout without an ID token
    hint): the person confirms with a POST. ``service`` is followed only when registered."""
    service = request.values.get("service")
    target = service if service and registry.client_for(service) is not None else None
    sess = sso.current()
    if sess is not None:
        if request.method != "POST" or request.form.get("confirm") != "yes":
            return render_template("cas/logout_confirm.html", service=target)
        single_logout.end_session(sess)
    if target:
        return redirect(target)
    return render_template("logged_out.html")

