"""Protocol endpoints: discovery, JWKS, authorize, token, userinfo, introspect, revoke, logout."""

from __future__ import annotations

import logging

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request
from flask_babel import gettext as _
from joserfc import jwt
from joserfc.errors import JoseError

from .. import error_pages, interaction, orgs, policy, single_logout
from ..authn import assurance
from ..authn import session as sso
from ..clients import find_client
from ..extensions import csrf
from ..models import Client
from ..ui import pick_locale_from
from . import bearer, claims_request, dpop, jarm, metadata, mtls, par
from . import interaction as oidc_interaction
from . import logout as bc_logout  # noqa: F401 (registers OIDC single logout)
from . import registration as registration_mod
from .claims import CLAIMS_SUPPORTED, SCOPES_SUPPORTED, legacy_claim, named_claims, user_claims
from .grants import ALL_METHODS, CONFIDENTIAL_METHODS
from .request_object import REQUEST_OBJECT_ALGS
from .tokens import (
    issuer,
    keyring,
    sign,
)

log = logging.getLogger(__name__)
bp = Blueprint("oidc", __name__)
CLIENT_ASSERTION_ALGS = ["RS256", "PS256", "ES256", "SM2SM3"]


def server():
    return current_app.extensions["idp.oauth"]


@bp.get("/.well-known/openid-configuration")
def discovery():
    base = issuer()
    algs = keyring().algorithms()
    doc = {
        "issuer": base,
        "authorization_endpoint": base + "/authorize",
        "token_endpoint": base + "/token",
        "userinfo_endpoint": base + "/userinfo",
        "jwks_uri": base + "/jwks",
        "end_session_endpoint": base + "/logout",
        "introspection_endpoint": base + "/introspect",
        "revocation_endpoint": base + "/revoke",
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": jarm.PLAIN_MODES + jarm.MODES,
        "authorization_signing_alg_values_supported": algs,
        "pushed_authorization_request_endpoint": base + "/par",
        "registration_endpoint": base + "/connect/register",
        "require_pushed_authorization_requests":
            bool(current_app.config["REQUIRE_PUSHED_AUTHORIZATION_REQUESTS"]),
        "request_object_signing_alg_values_supported": REQUEST_OBJECT_ALGS,
        "dpop_signing_alg_values_supported": dpop.DPOP_ALGS,
        "tls_client_certificate_bound_access_tokens": True,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": algs,
        "access_token_signing_alg_values_supported": [current_app.config["ACCESS_TOKEN_ALG"]],
        "token_endpoint_auth_methods_supported": ALL_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGS,
        # RFC 8414 §2: required wherever private_key_jwt is listed for an endpoint.
        "introspection_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGS,
        "revocation_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_METHODS,
        "revocation_endpoint_auth_methods_supported": ALL_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED,
        "prompt_values_supported": ["none", "login", "consent",
                                    *(["create"] if current_app.config["REGISTRATION_OPEN"]
                                      else [])],
        "ui_locales_supported": ["zh-CN", "en"],
        "claims_parameter_supported": True,
        "request_parameter_supported": True,
        # Only the request_uri values our PAR endpoint issues; none fetched from elsewhere.
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": True,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "acr_values_supported": list(assurance.LEVELS[1:]),
    }
    doc = metadata.merge_into(current_app, doc)
    aliases = mtls.endpoint_aliases(doc)
    if aliases:
        doc["mtls_endpoint_aliases"] = aliases  # RFC 8705 §5
    resp = jsonify(doc)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/jwks")
def jwks():
    resp = jsonify(keyring().jwks())
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def error_page(title: str, detail: str, status: int = 400):
    return render_template("error.html", title=title, detail=detail), status


def _authorize_error(err: OAuth2Error, grant=None):
    if err.redirect_uri:
        resp = server().handle_error_response(request, err)
        # RFC 9207 §2: error responses carry ``iss`` too. Authlib adds it only on the
        # responses it creates itself, not on errors raised while we validate.
        resp.location = add_params_to_uri(resp.location, {"iss": issuer()})
        if grant is None:
            # Refused while Authlib validated (e.g. prompt=none without a session): the
            # redirect URI is the client's, checked; answer in the mode asked all the same.
            mode, client = request.values.get("response_mode"), find_client(
                request.values.get("client_id"))
            if jarm.wanted(mode) and client is not None:
                return jarm.wrap(resp, mode, client, err.redirect_uri)
            return resp
        return _as_asked(resp, grant)
    # Without a trustworthy redirect URI the error must not go anywhere but the
    # person's screen (RFC 6749 §4.1.2.1), or we would be an open redirector.
    # In the person's words, the OAuth code only as a detail (idp.error_pages).
    return error_pages.oauth_error(err)


def _as_asked(resp, grant):
    """The authorization response in the response mode the request asked for (form_post,
    JARM); a redirect elsewhere (to a sign-in page) stays as it is."""
    mode = grant.request.payload.data.get("response_mode") if grant is not None else None
    if jarm.wanted(mode):
        return jarm.wrap(resp, mode, grant.client, grant.redirect_uri)
    return resp


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    """Load or start the pending request, run the interaction's checks, then issue."""
    sess = sso.current()
    try:
        grant = server().get_consent_grant(end_user=sess.person if sess else None)
    except OAuth2Error as err:
        return _authorize_error(err)
    pick_locale_from(grant.request.payload.data.get("ui_locales"))
    try:
        req = oidc_interaction.pending_request(grant)
        ctx = interaction.Context(req, sess, grant.client)
        outcome = interaction.evaluate(ctx)
        if outcome is not None:
            # A refusal (access_denied) goes back in the asked mode too.
            return _as_asked(oidc_interaction.answer(outcome, req, grant, server()), grant)
        oidc_interaction.check_subject(req, grant, sess.person)
    except OAuth2Error as err:
        err.state = grant.request.payload.state
        return _authorize_error(err, grant)
    done = interaction.complete(ctx, policy.token_channel(grant.client, sess.channel))
    g.idp_auth_context = {"auth_time": sess.auth_time, "acr": sess.acr, "amr": sess.amr,
                          "sid": sess.sid, "channel": done.channel,
                          "membership_id": done.membership.id if done.membership else None,
                          "claims": claims_request.released(req.claims, grant.client, ctx.scope,
                                                            req.claims_declined)}
    return _as_asked(server().create_authorization_response(grant=grant, grant_user=done.person),
                     grant)


@bp.post("/par")
@csrf.exempt
def pushed_authorization_request():
    """RFC 9126 (see idp.oidc.par)."""
    return par.push(server())


@bp.post("/connect/register")
@csrf.exempt
def register():
    """Dynamic client registration (RFC 7591; see idp.oidc.registration)."""
    return server().create_endpoint_response("client_registration")


@bp.route("/connect/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@csrf.exempt
def registration(client_id):
    """Client configuration (RFC 7592) with the registration access token."""
    return server().create_endpoint_response("client_configuration")


@bp.post("/connect/register/<client_id>/secret")
@csrf.exempt
def registration_secret(client_id):
    try:
        body = registration_mod.rotate_secret(client_id)
    except OAuth2Error as err:
        return par.error_response(err)
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/token")
@csrf.exempt
def token():
    """The token endpoint; a DPoP proof (RFC 9449) or a TLS client certificate (RFC
    8705) binds what is issued (``cnf``), which the grants check (idp.oidc.grants)."""
    try:
        proof = dpop.proof_from_request(nonce_required=dpop.nonce_required_at_as())
    except OAuth2Error as err:
        return par.error_response(err)
    if proof is not None:
        request.environ["idp.cnf"] = {"jkt": proof.jkt}
    elif (thumb := mtls.presented_thumbprint()) is not None:
        request.environ["idp.cnf"] = {"x5t#S256": thumb}
    return dpop.fresh_nonce(server().create_token_response())


@bp.post("/introspect")
@csrf.exempt
def introspect():
    return server().create_endpoint_response("introspection")


@bp.post("/revoke")
@csrf.exempt
def revoke():
    return server().create_endpoint_response("revocation")


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    """OIDC Core §5.3. Written out rather than through Authlib's ResourceProtector so
    the one access-token check (``decode_access_token``) serves userinfo and
    introspection alike, including revocation (see ``bearer``)."""
    try:
        at = bearer.access_token(form_allowed=True)
        if "openid" not in at.get_scope().split():
            raise bearer.BearerError("insufficient_scope", "The 'openid' scope is required.",
                                     403)
        person = bearer.active_person(at)
    except bearer.BearerError as err:
        return err.response()
    scope = at.get_scope()
    claims = dict(user_claims(person, scope, at.claims["sub"]))
    client = find_client(at.claims["client_id"])
    if "legacy" in scope.split() and client is not None:
        claims["legacy_accounts"] = legacy_claim(person.id, client)
    if "org" in scope.split() and at.claims.get("idp_mid"):
        membership = orgs.valid_membership(at.claims["idp_mid"])
        if membership is None:  # ended since the revocation check above
            return bearer.BearerError("invalid_token",
                                      "The organisation appointment has ended.").response()
        claims["org"] = orgs.org_claim(membership)
    # Claims asked for by name in the ``userinfo`` member (OIDC Core §5.5).
    named = named_claims(person, at.claims.get("idp_claims"), at.claims["sub"], client)
    claims.update({k: v for k, v in named.items() if k not in claims})
    alg = client.meta("userinfo_signed_response_alg") if client else None
    if alg:
        # OIDC Core §5.3.2: a signed response carries iss and aud.
        claims.update(iss=issuer(), aud=client.client_id)
        resp = current_app.response_class(sign(claims, alg), mimetype="application/jwt")
    else:
        resp = jsonify(claims)
    resp.headers["Cache-Control"] = "no-store"
    return dpop.fresh_nonce(resp)


def _client_from_hint(hint: str | None) -> tuple[Client | None, dict | None, str | None]:
    """Verify an ``id_token_hint``: our signature and issuer; expiry is not required
    (OIDC RP-Initiated Logout §2: a hint may be expired)."""
    if not hint:
        return None, None, None
    try:
        decoded = jwt.decode(hint, keyring().public_keys(), algorithms=keyring().algorithms())
    except (JoseError, ValueError, TypeError):
        return None, None, _("id_token_hint 无效：签名或格式错误")
    claims = decoded.claims
    aud = claims.get("aud")
    client_id = aud[0] if isinstance(aud, list) and aud else aud
    if claims.get("iss") != issuer() or not isinstance(client_id, str):
        return None, None, _("id_token_hint 无效：不是本平台签发的身份令牌")
    client = find_client(client_id)
    if client is None:
        return None, None, _("id_token_hint 无效：未知的应用")
    return client, claims, None


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt
def end_session():
    """RP-initiated logout. With a valid ``id_token_hint`` for the current session it
    signs out at once; otherwise it asks, since a bare link must not log people out."""
    args = request.values
    pick_locale_from(args.get("ui_locales"))
    client, claims, problem = _client_from_hint(args.get("id_token_hint"))
    if problem:
        return error_page(_("退出登录失败"), problem)
    client_id = args.get("client_id")
    if client_id and client is not None and client_id != client.client_id:
        return error_page(_("退出登录失败"), _("client_id 与 id_token_hint 不一致"))
    if client is None and client_id:
        client = find_client(client_id)
        if client is None:
            return error_page(_("退出登录失败"), _("未知的应用"))
    target = args.get("post_logout_redirect_uri")
    if target and (client is None or target not in client.post_logout_redirect_uris):
        return error_page(_("退出登录失败"), _("退出后的跳转地址未在平台登记"))

    sess = sso.current()
    state = args.get("state")
    confirmed = request.method == "POST" and args.get("confirm") == "yes"
    hint_matches = sess is not None and claims is not None and claims.get("sid") == sess.sid
    if sess is not None and not hint_matches and not confirmed:
        return render_template("logout_confirm.html", client=client, target=target,
                               state=state, client_id=client.client_id if client else None)
    if request.method == "POST" and confirmed:
        csrf.protect()
    if sess is not None:
        end_session_everywhere(sess)
    if target:
        return redirect(add_params_to_uri(target, [("state", state)] if state else []))
    return render_template("logged_out.html")


def end_session_everywhere(sess) -> list:
    """The person's own logout: this session, and every relying party of it."""
    return single_logout.end_session(sess)
