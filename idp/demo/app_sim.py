"""A phone-sized stand-in for the government mobile app, at ``/demo/app``.

It is a real public client in the browser (the demo seed registers ``demo-app``,
channel ``app``): code + PKCE against ``/authorize`` and ``/token``, rotating refresh
tokens, then only the ``/api/app`` JSON API with its bearer token — exactly what a
native app does, so the QR and counter stories can be tried without a phone.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

from .. import audit
from ..authn import session as sso
from ..clients import find_client

DEMO_APP_CLIENT_ID = "demo-app"

bp = Blueprint("app_sim", __name__, url_prefix="/demo/app")


def redirect_uri() -> str:
    return current_app.config["ISSUER"] + "/demo/app"


@bp.get("")
def page():
    client = find_client(DEMO_APP_CLIENT_ID)
    ready = client is not None and client.channel == "app" and redirect_uri() in (
        client.redirect_uris)
    return render_template("app_sim.html", ready=ready, client_id=DEMO_APP_CLIENT_ID,
                           redirect_uri=redirect_uri(), issuer=current_app.config["ISSUER"])


@bp.post("/release")
def release():
    """Signing in to the app went through this browser's login page, which left an SSO
    session of channel ``app``. A phone's sign-in does not sign in the desk's browser,
    so the simulator gives that session up once it holds its tokens (CSRF-protected;
    sessions of any other channel are left alone)."""
    sess = sso.current()
    if sess is not None and sess.channel == "app":
        sso.end(sess)
        audit.record("logout", actor=sess.person_id, subject=sess.person_id,
                     client_id=DEMO_APP_CLIENT_ID,
                     details={"sid": sess.sid, "reason": "app simulator released browser"})
        return jsonify(released=True)
    return jsonify(released=False)


def register(app) -> None:
    app.register_blueprint(bp)
