"""SAML 2.0 identity provider endpoints under ``/saml``: metadata, single sign-on
(HTTP-Redirect and HTTP-POST), IdP-initiated sign-in, single logout."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.metadata import entity_descriptor

from .. import audit, interaction, policy
from ..authn import session as sso
from ..extensions import csrf
from ..ui import pick_locale_from
from . import authn_request, responses, subject
from . import interaction as saml_interaction
from . import logout as saml_logout
from .authn_request import BadRequest, StatusError
from .pages import error_page, repost
from .registry import sp_by_entity
from .server import _config, endpoints

log = logging.getLogger(__name__)
bp = Blueprint("saml", __name__, url_prefix="/saml")


@bp.get("/metadata")
def metadata():
    """Our IdP metadata: entity ID, signing/encryption certificate, SSO and SLO endpoints."""
    desc = entity_descriptor(_config([]))
    resp = current_app.response_class(str(desc), mimetype="application/samlmetadata+xml")
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def _cookieless_post() -> bool:
    cfg = current_app.config
    return (request.method == "POST" and not request.form.get("_repost")
            and cfg["SSO_COOKIE_NAME"] not in request.cookies)


@bp.route("/sso", methods=["GET", "POST"], endpoint="sso")
@csrf.exempt
def sso_endpoint():
    """SP-initiated sign-in (``SAMLRequest``), or its resumption (``_rid``)."""
    pick_locale_from(request.values.get("ui_locales"))
    rid = request.args.get("_rid")
    if rid is not None:
        req = saml_interaction.stored(rid)
        if req is None:
            return interaction.expired_page()
        sp = req.client
        if sp is None or sp.protocol != "saml" or sp.status != "active":
            req.finish()
            return error_page(*_UNKNOWN)
        return _run(sp, req)
    value = request.values.get("SAMLRequest")
    if not value:
        return error_page("无法读取 SAML 请求", "SAMLRequest is missing.")
    if _cookieless_post():
        return repost(endpoints()["sso"])
    binding = BINDING_HTTP_POST if request.method == "POST" else BINDING_HTTP_REDIRECT
    try:
        sp, parsed = authn_request.parse(value, binding, request.values.get("RelayState"),
                                         request.query_string)
    except BadRequest as exc:
        return error_page(exc.title, exc.detail)
    except StatusError as exc:
        sp = sp_by_entity(authn_request.issuer_of(authn_request.decode(value, binding)))
        return responses.post_form(sp, exc.parsed,
                                   responses.failure(sp, exc.parsed, exc.status, str(exc)))
    return _run(sp, saml_interaction.pending_request(sp, parsed))


_UNKNOWN = authn_request.UNKNOWN_SP


@bp.get("/init")
def idp_initiated():
    """IdP-initiated sign-in for a registered SP (``sp``: its entity ID or client id)."""
    pick_locale_from(request.args.get("ui_locales"))
    name = request.args.get("sp", "")
    sp = sp_by_entity(name)
    if sp is None:
        from ..clients import find_client

        sp = find_client(name)
        if sp is None or sp.protocol != "saml" or sp.status != "active":
            return error_page(*_UNKNOWN, status=404)
    relay = request.args.get("RelayState") or ""
    if len(relay) > 80 * 4:
        return error_page("SAML 请求无效", "RelayState is too long.")
    parsed = authn_request.unsolicited(sp, relay)
    return _run(sp, saml_interaction.pending_request(sp, parsed))


def _run(sp, req):
    sess = sso.current()
    ctx = interaction.Context(req, sess, sp)
    outcome = interaction.evaluate(ctx)
    if outcome is not None:
        return saml_interaction.answer(outcome, req, sp)
    done = interaction.complete(ctx, policy.token_channel(sp, sess.channel))
    parsed = req.params
    nid = subject.name_id(sp, done.person.id, parsed["fmt"])
    identity = subject.attributes(sp, done.person, ctx.scope, sess, done.membership, done.channel)
    xml = responses.success(sp, parsed, nid, identity, acr=sess.acr, auth_time=sess.auth_time)
    subject.remember(sess.sid, sp, nid)
    audit.record("saml.assertion", actor=done.person.id, subject=done.person.id,
                 client_id=sp.client_id, ip=request.remote_addr,
                 details={"sid": sess.sid, "acr": sess.acr, "channel": done.channel,
                          "name_id_format": parsed["fmt"], "attributes": sorted(identity),
                          "unsolicited": not parsed["id"],
                          "encrypted": bool(sp.meta("saml_encryption_certs"))})
    return responses.post_form(sp, parsed, xml)


@bp.route("/slo", methods=["GET", "POST"])
@csrf.exempt
def slo():
    """Single logout from an SP (``SAMLRequest``: its LogoutRequest), or an SP's
    LogoutResponse to one of ours (``SAMLResponse``)."""
    pick_locale_from(request.values.get("ui_locales"))
    if request.values.get("SAMLRequest"):
        if _cookieless_post():
            return repost(endpoints()["slo"])
        binding = BINDING_HTTP_POST if request.method == "POST" else BINDING_HTTP_REDIRECT
        return saml_logout.from_sp(request.values["SAMLRequest"], binding,
                                   request.values.get("RelayState"), request.query_string)
    if request.values.get("SAMLResponse"):
        from flask import render_template

        return render_template("logged_out.html")
    return error_page("无法读取 SAML 请求", "SAMLRequest is missing.")
