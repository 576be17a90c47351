"""Who is at the console, and signing them in at the level the console needs.

An administrator is a person with an ``admin_role`` row (:mod:`admin.roles`) whose
single sign-on session (``sso.current()``) holds at least ``L3``. There is no separate
admin login: the console is a first-party relying party of this provider, client
``admin-console`` (registered on first use, public, PKCE). Whenever the session is
missing or below ``L3``, the console starts an ordinary authorization request of that
client with ``acr_values=L3``; ``/authorize`` then does what it does for every relying
party — the sign-in page when there is no session, the step-up page
(``/login/step-up``) when the session's level is too low — and finally redirects to
``/admin/callback``. The callback checks ``state`` and goes back to the page first asked
for; the session itself was raised by the step-up (same ``sid``), so the code is never
redeemed (its PKCE verifier is thrown away, so nobody else can redeem it either). One
sign-in path, one step-up path, no admin-only authenticator to keep secure.

Without a session a page redirects straight into that request; with a session too low
for the console it shows "需要更高认证等级" and a button that starts it (a person
looking at a page should know why they are asked to authenticate again). A session
without a role gets 403. The JSON API answers 401 / 403 with an error code instead.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from functools import wraps
from urllib.parse import urlencode, urlsplit

from flask import current_app, g, jsonify, redirect, render_template, request, session, url_for

from idp.authn import assurance
from idp.authn import session as sso
from idp.clients import ClientError, forget_client, register_client
from idp.extensions import csrf, db
from idp.models import Client

from . import roles

CONSOLE_CLIENT = "admin-console"
REQUIRED_ACR = "L3"
_PENDING = "admin_signin"
SIGNIN_TTL = 900


def callback_uri() -> str:
    return current_app.config["ISSUER"].rstrip("/") + "/admin/callback"


def ensure_client() -> Client:
    """The console's own client registration, made (or pointed at the current issuer)
    when needed; idempotent."""
    uri = callback_uri()
    client = db.session.scalar(db.select(Client).where(Client.client_id == CONSOLE_CLIENT))
    if client is None:
        try:
            client = register_client(
                client_id=CONSOLE_CLIENT, name="管理控制台", secret=None, auth_method="none",
                redirect_uris=[uri], grant_types=["authorization_code"],
                post_logout_redirect_uris=[], backchannel_logout_uri=None, first_party=True,
                sensitive_scopes=[], channel="web", jwks=None, id_token_alg=None)
        except ClientError:
            db.session.rollback()  # another worker registered it just now
            client = db.session.scalar(db.select(Client).where(
                Client.client_id == CONSOLE_CLIENT))
    elif client.redirect_uris != [uri]:
        client.client_metadata = {**(client.client_metadata or {}), "redirect_uris": [uri]}
        db.session.commit()
        forget_client(CONSOLE_CLIENT)
    return client


def _safe_next(url: str | None) -> str:
    parts = urlsplit(url or "")
    if (url and not parts.scheme and not parts.netloc and url.startswith("/admin/")
            and "\\" not in url and not url.startswith("//")):
        return url
    return url_for("admin.queue")


def signin_url(next_url: str) -> str:
    return url_for("admin.signin", next=next_url)


def start_signin(next_url: str):
    """Redirect into an authorization request of the console client at ``L3``."""
    ensure_client()
    state = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    session[_PENDING] = {"state": state, "next": _safe_next(next_url), "at": time.time()}
    params = {"response_type": "code", "client_id": CONSOLE_CLIENT,
              "redirect_uri": callback_uri(), "scope": "openid", "state": state,
              "nonce": secrets.token_urlsafe(12), "acr_values": REQUIRED_ACR,
              "code_challenge": challenge, "code_challenge_method": "S256"}
    return redirect(url_for("oidc.authorize") + "?" + urlencode(params))


def finish_signin() -> tuple[str | None, str | None]:
    """(page to go back to, None) or (None, error code) for the callback."""
    pending = session.pop(_PENDING, None) or {}
    state = request.args.get("state")
    if (not state or not isinstance(pending, dict) or pending.get("state") != state
            or time.time() - float(pending.get("at", 0)) > SIGNIN_TTL):
        return None, "invalid_state"
    if request.args.get("error"):
        return None, request.args["error"][:64]
    return _safe_next(pending.get("next")), None


def _here() -> str:
    return request.full_path if request.query_string else request.path


def _denied(kind: str, api: bool):
    if api:
        status, error = {"login": (401, "login_required"),
                         "role": (403, "access_denied"),
                         "acr": (403, "insufficient_user_authentication")}[kind]
        body = {"error": error}
        if kind == "acr":
            body["acr_values"] = REQUIRED_ACR
        return jsonify(body), status
    if kind == "login":
        return start_signin(_here())
    if kind == "role":
        return render_template("admin/forbidden.html"), 403
    return render_template("admin/step_up.html", asked=REQUIRED_ACR,
                           reached=g.admin_session.acr,
                           start=signin_url(_here() if request.method == "GET"
                                            else url_for("admin.queue"))), 403


def _bearer_admin(header: str):
    """(actor, roles, permissions) of an API client's token, or a refusal response.

    The token is a client-credentials access token of this provider; its client must be
    an admin API client (``admin_owner``: the administrator who created it, still holding
    a role). It may do what its owner may, narrowed to the token's ``admin:*`` scopes."""
    from idp.clients import find_client
    from idp.oidc.bearer import BearerError, access_token

    try:
        at = access_token()
    except BearerError as exc:
        return exc.response()
    cid = at.claims.get("client_id")
    client = find_client(cid)
    owner = client.meta("admin_owner") if client is not None else None
    if not owner or at.claims.get("sub") not in (None, cid):
        return BearerError("insufficient_scope", "Not an admin API client's token.",
                           403).response()
    held = roles.roles_of(owner)
    scopes = set(str(at.claims.get("scope", "")).split()) & set(client.meta("admin_scopes", []))
    perms = roles.permissions_for_scopes(held, scopes)
    return f"client:{cid}", held, perms, owner


def _api_refusal(permission: str):
    body = {"error": "access_denied",
            "error_description": f"This needs the permission {permission}."}
    return jsonify(body), 403


def require(permission: str = "review.read", *, api: bool = False):
    """Decorator: the view runs only for a session at ``L3`` whose person's roles permit
    ``permission`` (:mod:`admin.roles`) — or, for the API, a bearer token of an admin
    API client whose scopes and owner permit it. Sets ``g.admin_id`` (the actor for the
    audit log), ``g.admin_roles``, ``g.admin_perms`` and ``g.admin_bearer``."""
    def wrap(view):
        @wraps(view)
        def inner(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            if api and header[:7].lower() == "bearer ":
                found = _bearer_admin(header)
                if not isinstance(found, tuple):
                    return found
                g.admin_id, g.admin_roles, g.admin_perms, g.admin_owner = found
                g.admin_bearer, g.admin_session = True, None
                if permission not in g.admin_perms:
                    return _api_refusal(permission)
                return view(*args, **kwargs)
            sess = sso.current()
            if sess is None:
                return _denied("login", api)
            held = roles.roles_of(sess.person_id)
            if not held:
                return _denied("role", api)
            g.admin_session, g.admin_id, g.admin_roles = sess, sess.person_id, held
            g.admin_owner = sess.person_id
            g.admin_perms, g.admin_bearer = roles.permissions(held), False
            if not assurance.meets(sess.acr, REQUIRED_ACR):
                return _denied("acr", api)
            if permission not in g.admin_perms:
                if api:
                    return _api_refusal(permission)
                return render_template("admin/forbidden.html", permission=permission), 403
            if api and request.method not in ("GET", "HEAD", "OPTIONS"):
                csrf.protect()  # the session's cookie rides along by itself: CSRF check
            return view(*args, **kwargs)
        return inner
    return wrap


def home_for(perms: frozenset[str]) -> str:
    """The first console page a person's permissions open."""
    for perm, endpoint in (("dashboard.read", "admin.dashboard"), ("review.read", "admin.queue"),
                           ("people.read", "admin.people_page"), ("clients.read", "admin.clients"),
                           ("audit.read", "admin.audit_log")):
        if perm in perms:
            return url_for(endpoint)
    return url_for("admin.queue")


def may_merge(item_id: int, person_id: str, force: bool) -> bool:
    """A reviewer may link an unlinked legacy account; merging two persons (the account
    already belongs to someone else) or forcing is for the ``admin`` role."""
    if "review.merge" in g.admin_perms:
        return True
    from idp.models import LegacyAccount, ReviewItem

    item = db.session.get(ReviewItem, item_id)
    account = db.session.get(LegacyAccount, item.legacy_account_id) if item else None
    linked = account.person_id if account else None
    return not force and (linked is None or linked == person_id)
