"""Signing in with an upstream OpenID Connect provider (connectors.oidc_upstream).

``/login/upstream/<name>?rid=`` sends the browser to the upstream's authorization
endpoint (code flow, PKCE S256, state and nonce); ``…/callback`` takes the code back,
exchanges it, verifies the ID token against the upstream's discovery document and JWKS
(issuer, audience, expiry, nonce, signature), links the account and signs the person in
with ``amr`` ["fed"], then resumes the waiting authorization.

The Authlib Flask client keeps each sign-in's state (nonce, PKCE verifier, ``rid``) in
the shared store under the state value, and a marker in this browser's signed session
cookie, so a callback is accepted only from the browser that started it, only once, and
only for ``UPSTREAM_STATE_TTL`` seconds — on any worker.
"""

from __future__ import annotations

import json
import logging

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from joserfc.errors import JoseError

from connectors.base import ConnectorError
from connectors.oidc_upstream import Upstream, link, load_all

from .. import audit, interaction
from ..store import store
from . import session as sso

bp = Blueprint("upstream", __name__)
log = logging.getLogger("idp.upstream")


class _StateCache:
    """Authlib's cache interface over the shared store. ``get`` takes: Authlib reads a
    state exactly once per callback, so taking makes a state single-use even when two
    callbacks with it arrive at two workers at the same moment."""

    def get(self, key):
        return store().take("upstream:" + key)

    def set(self, key, value, expires=None):
        store().set("upstream:" + key, value, float(expires or 600))

    def delete(self, key):
        store().delete("upstream:" + key)


class UpstreamError(Exception):
    """A sign-in at the upstream that cannot be used; ``reason`` goes to the audit log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def upstreams(app=None) -> dict[str, Upstream]:
    """The configured upstreams, parsed again only when ``UPSTREAM_IDPS`` changes."""
    app = app or current_app
    raw = app.config.get("UPSTREAM_IDPS") or []
    key = json.dumps(raw, sort_keys=True, default=str)
    cached = app.extensions.get("idp.upstreams")
    if cached is None or cached[0] != key:
        cached = (key, load_all(raw, base=app.instance_path), {})
        app.extensions["idp.upstreams"] = cached
    return cached[1]


def _client(up: Upstream) -> FlaskOAuth2App:
    clients = current_app.extensions["idp.upstreams"][2]
    client = clients.get(up.name)
    if client is None:
        client = FlaskOAuth2App(
            FlaskIntegration(f"upstream-{up.name}", cache=_StateCache()), name=up.name,
            client_id=up.client_id, client_secret=up.client_secret,
            server_metadata_url=up.metadata_url,
            client_kwargs={"scope": up.scope, "code_challenge_method": "S256",
                           "token_endpoint_auth_method": up.auth_method,
                           "default_timeout": current_app.config["UPSTREAM_TIMEOUT"]})
        clients[up.name] = client
    return client


def _metadata(client: FlaskOAuth2App, up: Upstream) -> dict:
    metadata = client.load_server_metadata()
    # OpenID Connect Discovery §4.3: the document must name the issuer we asked for.
    if str(metadata.get("issuer", "")).rstrip("/") != up.issuer:
        raise UpstreamError("issuer_mismatch")
    return metadata


@bp.record_once
def _check_config(state) -> None:
    # A broken upstream configuration stops `idp serve` with the file and key named,
    # rather than surfacing as a failing button later.
    upstreams(state.app)


@bp.app_context_processor
def _login_buttons():
    def upstream_logins():
        return [{"name": u.name, "label": _label(u),
                 "url": url_for("upstream.start", name=u.name)}
                for u in upstreams().values()]
    return {"upstream_logins": upstream_logins}


def _label(up: Upstream) -> str:
    return up.label_en if str(get_locale()) == "en" else up.label


def _page(template: str, status: int, up: Upstream | None, **ctx):
    return render_template(template, label=_label(up) if up else None, **ctx), status


def _error(up: Upstream | None, title: str, detail: str, status: int = 400, rid=None):
    return _page("upstream_error.html", status, up, title=title, detail=detail, rid=rid)


@bp.get("/login/upstream/<name>")
def start(name: str):
    up = upstreams().get(name)
    if up is None:
        return _error(None, _("未找到该登录方式"), _("请返回登录页选择其他登录方式。"), 404)
    rid = request.args.get("rid") or None
    if rid and interaction.load(rid) is None:
        return _error(up, _("登录请求已过期"), _("请回到原网站重新点击登录。"))
    client = _client(up)
    client.framework.expires_in = current_app.config["UPSTREAM_STATE_TTL"]
    redirect_uri = up.redirect_uri or (
        current_app.config["ISSUER"] + url_for("upstream.callback", name=name))
    try:
        _metadata(client, up)
        rv = client.create_authorization_url(redirect_uri)
    except (requests.RequestException, ValueError, RuntimeError, UpstreamError) as exc:
        log.warning("upstream %s: discovery failed (%s)", up.name, type(exc).__name__)
        return _unavailable(up, rid)
    client.save_authorize_data(redirect_uri=redirect_uri, rid=rid, **rv)
    return redirect(rv["url"])


def _unavailable(up: Upstream, rid):
    return _error(up, _("暂时无法连接%(label)s", label=_label(up)),
                  _("请稍后再试，或使用其他方式登录。"), 503, rid=rid)


def _verified_claims(client: FlaskOAuth2App, up: Upstream, data: dict) -> dict:
    code = request.args.get("code")
    if not code or len(code) > 2048:
        raise UpstreamError("no_code")
    metadata = _metadata(client, up)
    iss = request.args.get("iss")
    if iss is not None and iss != metadata["issuer"]:
        # RFC 9207: the response says it comes from another provider (a mix-up attack).
        raise UpstreamError("iss_mismatch")
    token = client.fetch_access_token(code=code, redirect_uri=data["redirect_uri"],
                                      code_verifier=data.get("code_verifier"))
    if "id_token" not in token:
        # Authlib skips ID token checks when there is none; without one nothing is proven.
        raise UpstreamError("no_id_token")
    claims = dict(client.parse_id_token(
        token, nonce=data["nonce"], leeway=60,
        claims_options={"iss": {"essential": True, "values": [metadata["issuer"]]},
                        "aud": {"essential": True, "values": [up.client_id]}}))
    wanted = [c for c in (up.id_claim, up.name_claim) if c not in claims]
    if wanted and metadata.get("userinfo_endpoint"):
        # Many providers release profile claims only at userinfo (OIDC Core §5.4).
        info = dict(client.userinfo(token=token))
        if info.get("sub") != claims.get("sub"):  # OIDC Core §5.3.2
            raise UpstreamError("userinfo_sub_mismatch")
        claims = {**info, **claims}
    return claims


@bp.get("/login/upstream/<name>/callback")
def callback(name: str):
    up = upstreams().get(name)
    if up is None:
        return _error(None, _("未找到该登录方式"), _("请返回登录页选择其他登录方式。"), 404)
    client = _client(up)
    data = _take_state(client)
    if data is None:
        audit.record("login.failure", actor="anonymous",
                     details={"reason": "upstream_state", "upstream": up.name})
        return _error(up, _("登录请求已过期或无效"),
                      _("请回到登录页重新选择“使用%(label)s账号登录”。", label=_label(up)))
    rid = data.get("rid")
    req = interaction.load(rid) if rid else None
    cid = req.client_id if req else None
    error = request.args.get("error")
    if error:
        return _upstream_refused(up, error, cid, rid)
    outcome, problem = _exchange(up, client, data, cid, rid)
    if problem is not None:
        return problem
    if outcome.action in ("review", "refused"):
        audit.record("login.failure", actor="anonymous", client_id=cid, details={
            "reason": f"upstream_{outcome.action}", "upstream": up.name, "rule": outcome.rule})
        if outcome.action == "review":
            return _page("upstream_review.html", 200, up, rid=rid)
        return _page("upstream_refused.html", 403, up, rule=outcome.rule, rid=rid)
    person = outcome.person
    sess = sso.start(person, amr=["fed"], channel=req.channel if req else "web")
    audit.record("login.success", actor=person.id, subject=person.id, client_id=cid,
                 details={"amr": sess.amr, "acr": sess.acr, "sid": sess.sid,
                          "upstream": up.name, "rule": outcome.rule})
    return redirect(req.resume_url() if req else url_for("authn.home"))


def _take_state(client):
    """The state this browser stored when it left for the upstream, used up; or None."""
    state = request.args.get("state", "")
    if not state or len(state) > 128:
        return None
    data = client.framework.get_state_data(session, state)
    if data is not None:
        # Only the browser that holds the state may clear it: another one presenting the
        # callback URL must not be able to spoil the real person's sign-in.
        client.framework.clear_state_data(session, state)
    return data


def _upstream_refused(up: Upstream, error: str, cid, rid):
    """The upstream sent the person back with an error instead of a code."""
    audit.record("login.failure", actor="anonymous", client_id=cid,
                 details={"reason": "upstream_error", "upstream": up.name,
                          "error": error[:64]})
    if error == "access_denied":
        return _error(up, _("已取消登录"), rid=rid, detail=_(
            "您在%(label)s取消了登录，可重新选择登录方式。", label=_label(up)))
    return _error(up, _("%(label)s未能完成登录", label=_label(up)),
                  _("请稍后再试，或使用其他方式登录。"), rid=rid)


def _exchange(up: Upstream, client, data, cid, rid):
    """Code for tokens, verified claims, linked to a person: ``(outcome, None)``, or
    ``(None, the page to show)`` when any of it fails."""
    try:
        return link(up, _verified_claims(client, up, data)), None
    except UpstreamError as exc:
        return None, _rejected(up, exc.reason, cid, rid)
    except JoseError as exc:
        claim = getattr(exc, "claim", None)
        return None, _rejected(up, f"id_token:{exc.error}" + (f":{claim}" if claim else ""),
                               cid, rid)
    except OAuthError as exc:
        return None, _rejected(up, f"token:{(exc.error or 'error')[:48]}", cid, rid)
    except ConnectorError:
        return None, _rejected(up, "no_sub", cid, rid)
    except (requests.RequestException, ValueError) as exc:
        log.warning("upstream %s: token exchange failed (%s)", up.name, type(exc).__name__)
        return None, _unavailable(up, rid)


def _rejected(up: Upstream, reason: str, cid, rid):
    # Only the kind of problem is logged and audited: never the token or its claims.
    log.warning("upstream %s: sign-in rejected (%s)", up.name, reason)
    audit.record("login.failure", actor="anonymous", client_id=cid,
                 details={"reason": "upstream_invalid", "upstream": up.name, "detail": reason})
    return _error(up, _("无法验证%(label)s的登录结果", label=_label(up)),
                  _("请重新登录；如多次出现，请使用其他方式登录。"), rid=rid)
