"""Protocol endpoints: discovery, JWKS, authorize, token, userinfo, introspect, revoke, logout."""

from __future__ import annotations

import logging
import time

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core.errors import (
    AccountSelectionRequiredError,
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from joserfc import jwt
from joserfc.errors import JoseError

from .. import audit, orgs
from ..authn import assurance
from ..authn import session as sso
from ..clients import find_client
from ..extensions import csrf, db
from ..models import Client, Consent, Person
from ..ui import pick_locale_from
from . import bearer, metadata, pending
from . import logout as bc_logout
from .claims import CLAIMS_SUPPORTED, SCOPES_SUPPORTED, legacy_claim, user_claims
from .grants import ALL_METHODS, CONFIDENTIAL_METHODS
from .tokens import (
    issuer,
    keyring,
    sign,
)

log = logging.getLogger(__name__)
bp = Blueprint("oidc", __name__)
CLIENT_ASSERTION_ALGS = ["RS256", "PS256", "ES256"]


def server():
    return current_app.extensions["idp.oauth"]


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Unmet Authentication Requirements 1.0: the level asked for
    in ``acr_values`` cannot be reached by this person here."""

    error = "unmet_authentication_requirements"
    description = "The requested authentication level could not be reached."


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
        "response_modes_supported": ["query"],
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
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": ["zh-CN", "en"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "acr_values_supported": list(assurance.LEVELS[1:]),
    }
    resp = jsonify(metadata.merge_into(current_app, doc))
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/jwks")
def jwks():
    resp = jsonify(keyring().jwks())
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def error_page(title: str, detail: str, status: int = 400):
    return render_template("error.html", title=title, detail=detail), status


def _authorize_error(err: OAuth2Error):
    if err.redirect_uri:
        resp = server().handle_error_response(request, err)
        # RFC 9207 §2: error responses carry ``iss`` too. Authlib adds it only on the
        # responses it creates itself, not on errors raised while we validate.
        resp.location = add_params_to_uri(resp.location, {"iss": issuer()})
        return resp
    # Without a trustworthy redirect URI the error must not go anywhere but the
    # person's screen (RFC 6749 §4.1.2.1), or we would be an open redirector.
    return error_page(_("无法完成登录请求"), f"{err.error}: {err.get_error_description() or ''}")


def _org_refusal(grant, uscc: str | None):
    """The person cannot act for the organisation asked for (or for any): say so plainly,
    and let them take the refusal back to the application as access_denied."""
    back = add_params_to_uri(grant.redirect_uri, [
        ("error", "access_denied"),
        ("error_description", "The person cannot act for the requested organisation."),
        *([("state", grant.request.payload.state)] if grant.request.payload.state else []),
        ("iss", issuer())])
    return render_template("org_refused.html", uscc=uscc, client=grant.client, back=back), 403


def _has_consent(person: Person, client: Client, scope: str) -> bool:
    if client.first_party:
        return True
    row = db.session.get(Consent, (person.id, client.client_id))
    return row is not None and set(scope.split()) <= set(row.scopes.split())


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    sess = sso.current()
    person = sess.person if sess else None
    try:
        grant = server().get_consent_grant(end_user=person)
    except OAuth2Error as err:
        return _authorize_error(err)
    params = dict(grant.request.payload.data)
    client = grant.client
    pick_locale_from(params.get("ui_locales"))

    rid = params.get("_rid")
    rec = pending.load(rid)
    if rec is None:
        rid = None
    try:
        # Request objects are not supported (discovery says so); refuse rather than
        # silently ignore parameters the client may think are signed (OIDC Core §6).
        if "request" in params:
            raise RequestNotSupportedError(redirect_uri=grant.redirect_uri)
        if "request_uri" in params:
            raise RequestURINotSupportedError(redirect_uri=grant.redirect_uri)
        if rec and rec.get("denied"):
            pending.finish(rid)
            return server().create_authorization_response(grant=grant, grant_user=None)

        prompts = set((params.get("prompt") or "").split())
        # A sign-in made after this request began satisfies prompt=login and max_age.
        fresh = rec is not None and sess is not None and sess.auth_time >= int(rec["created"])
        need_login = sess is None
        if sess is not None and not fresh:
            if "login" in prompts:
                need_login = True
            if params.get("max_age") not in (None, ""):
                try:
                    max_age = int(params["max_age"])
                except ValueError:
                    raise InvalidRequestError("'max_age' must be a whole number of seconds.",
                                              redirect_uri=grant.redirect_uri) from None
                if time.time() - sess.auth_time > max_age:
                    need_login = True
        if need_login:
            if "none" in prompts:
                raise LoginRequiredError(redirect_uri=grant.redirect_uri)
            rid = rid or pending.create(params)
            return redirect(url_for("authn.login", rid=rid))

        # Step-up (OIDC Core §3.1.2.1 acr_values): a session below the level asked for
        # is raised by the authenticators that reach it, or the request is refused; the
        # ID token then says the level actually reached.
        asked = assurance.required_level(params.get("acr_values"))
        if rec is not None and rec.get("unmet"):
            pending.finish(rid)
            raise UnmetAuthenticationRequirementsError(redirect_uri=grant.redirect_uri)
        if not assurance.meets(sess.acr, asked):
            if "none" in prompts:
                raise InteractionRequiredError(redirect_uri=grant.redirect_uri)
            rid = rid or pending.create(params)
            return redirect(url_for("stepup.page", rid=rid))

        scope = client.get_allowed_scope(grant.request.payload.scope)
        consented = rec is not None and rec.get("consented")
        if not consented and ("consent" in prompts or not _has_consent(person, client, scope)):
            if "none" in prompts:
                raise ConsentRequiredError(redirect_uri=grant.redirect_uri)
            rid = rid or pending.create(params)
            return redirect(url_for("authn.consent", rid=rid))

        membership = None
        hint_org = orgs.org_hint(params.get("login_hint"))
        if "org" in scope.split() or hint_org:
            options = orgs.eligible(orgs.memberships_of(person.id), client)
            if hint_org:
                options = [(m, o) for m, o in options if o.uscc == hint_org]
            chosen = rec.get("membership_id") if rec else None
            membership = next((m for m, _o in options if m.id == chosen), None)
            if membership is None and hint_org and len(options) == 1:
                membership = options[0][0]
            if membership is None:
                if not options:
                    if rid:
                        pending.finish(rid)
                    return _org_refusal(grant, hint_org)
                if "none" in prompts:
                    raise AccountSelectionRequiredError(redirect_uri=grant.redirect_uri)
                rid = rid or pending.create(params)
                return redirect(url_for("authn.select_org", rid=rid))
    except OAuth2Error as err:
        err.state = grant.request.payload.state
        return _authorize_error(err)

    if rid:
        pending.finish(rid)
    g.idp_auth_context = {"auth_time": sess.auth_time, "acr": sess.acr, "amr": sess.amr,
                          "sid": sess.sid, "membership_id": membership.id if membership else None,
                          # Where the tokens are obtained: the app or a kiosk client
                          # says so itself; a website's tokens say where its browser
                          # signed in (a website used on a kiosk screen is "kiosk").
                          "channel": client.channel if client.channel != "web"
                          else sess.channel}
    sso.add_client(sess, client.client_id)
    if membership is not None:
        claim = orgs.org_claim(membership)
        audit.record("org.act", actor=person.id, subject=f"org:{claim['uscc']}",
                     client_id=client.client_id,
                     details={"role": membership.role, "membership": membership.id})
    return server().create_authorization_response(grant=grant, grant_user=person)


@bp.post("/token")
@csrf.exempt
def token():
    return server().create_token_response()


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
    alg = client.meta("userinfo_signed_response_alg") if client else None
    if alg:
        # OIDC Core §5.3.2: a signed response carries iss and aud.
        claims.update(iss=issuer(), aud=client.client_id)
        resp = current_app.response_class(sign(claims, alg), mimetype="application/jwt")
    else:
        resp = jsonify(claims)
    resp.headers["Cache-Control"] = "no-store"
    return resp


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
    clients = sso.session_clients(sess)
    person_id = sess.person_id
    sso.end(sess)
    audit.record("logout", actor=person_id, subject=person_id,
                 details={"sid": sess.sid, "notified_clients": clients})
    return bc_logout.notify(clients, person_id, sess.sid)
