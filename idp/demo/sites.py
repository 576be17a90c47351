"""Two small relying-party websites, so single sign-on and single logout can be seen.

They are ordinary OpenID Connect clients built on Authlib's Flask client: discovery,
code flow with PKCE, a silent ``prompt=none`` check on arrival (that is what makes
the second site sign in by itself), RP-initiated logout and a back-channel logout
endpoint that ends the site's own session.
"""

from __future__ import annotations

import json
import os
import secrets
import threading

from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, jsonify, redirect, render_template_string, request, session, url_for
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from ..identity.masking import mask_id_number
from .seed import DEMO_SITES
from .urls import demo_site_url

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ name }}</title>
<style>body{font-family:system-ui,"Microsoft YaHei",sans-serif;margin:0;background:#f6f7f9}
header{background:{{ color }};color:#fff;padding:1rem}main{max-width:32rem;margin:1rem auto;
background:#fff;padding:1.5rem;border-radius:8px}a.b{display:inline-block;padding:.7rem 1.4rem;
background:{{ color }};color:#fff;border-radius:6px;text-decoration:none}</style></head><body>
<header><strong>{{ name }}</strong></header><main>
{% if user %}<p id="status" data-state="signed-in">已登录：{{ user.name }}（{{ user.number }}）</p>
<p>会话编号 sid：<code>{{ user.sid }}</code></p>
<p><a class="b" id="logout" href="/logout">退出登录</a></p>
{% else %}<p id="status" data-state="signed-out">未登录</p>
<p><a class="b" id="login" href="/login">通过统一身份认证平台登录</a></p>{% endif %}
</main></body></html>"""


def make_site(issuer: str, site: dict, secret: str) -> Flask:
    app = Flask(f"demo-{site['key']}")
    app.secret_key = secrets.token_hex(32)
    app.config["SESSION_COOKIE_NAME"] = f"rp_{site['key']}"
    base = demo_site_url(issuer, site)
    logged_out: set[str] = set()  # sids ended by back-channel logout
    oauth = OAuth(app)
    idp = oauth.register(
        "idp", client_id=site["client_id"], client_secret=secret,
        server_metadata_url=issuer + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile", "code_challenge_method": "S256"})
    color = "#1d4f91" if site["key"] == "province" else "#0f7b5f"

    def current_user():
        user = session.get("user")
        if user and user["sid"] in logged_out:
            session.clear()
            return None
        return user

    @app.get("/")
    def home():
        user = current_user()
        if user is None and not session.get("silent_tried"):
            session["silent_tried"] = True
            return redirect(url_for("login", silent=1))
        return render_template_string(PAGE, name=site["name"], user=user, color=color)

    @app.get("/login")
    def login():
        extra = {"prompt": "none"} if request.args.get("silent") else {}
        return idp.authorize_redirect(base + "/callback", **extra)

    @app.get("/callback")
    def callback():
        try:
            token = idp.authorize_access_token()
        except OAuthError:
            return redirect("/")  # login_required after the silent check: show the button
        claims = token["userinfo"]
        session["user"] = {"name": claims.get("name", ""), "sid": claims.get("sid"),
                           "number": claims.get("id_number_masked")
                           or mask_id_number(claims.get("sub", "")),
                           "id_token": token["id_token"]}
        return redirect("/")

    @app.get("/logout")
    def logout():
        user = session.pop("user", None)
        session["silent_tried"] = True
        if not user:
            return redirect("/")
        meta = idp.load_server_metadata()
        from urllib.parse import urlencode

        q = urlencode({"id_token_hint": user["id_token"], "post_logout_redirect_uri": base + "/",
                       "state": secrets.token_urlsafe(8)})
        return redirect(meta["end_session_endpoint"] + "?" + q)

    @app.post("/backchannel-logout")
    def backchannel_logout():
        raw = request.form.get("logout_token", "")
        try:
            keys = KeySet.import_key_set(idp.fetch_jwk_set(force=True))
            tok = jwt.decode(raw, keys, algorithms=["ES256", "RS256", "SM2SM3"])
        except Exception:  # noqa: BLE001 - any bad token is a 400 to the IdP
            return jsonify(error="invalid_request"), 400
        c = tok.claims
        events = c.get("events") or {}
        if (c.get("iss") != issuer or c.get("aud") != site["client_id"] or "nonce" in c
                or "http://schemas.openid.net/event/backchannel-logout" not in events
                or not c.get("sid")):
            return jsonify(error="invalid_request"), 400
        logged_out.add(c["sid"])
        return "", 200

    return app


def start_demo_sites(issuer: str, host: str, instance_path: str) -> list[str]:
    with open(os.path.join(instance_path, "demo_clients.json"), encoding="utf-8") as fh:
        known = json.load(fh)
    lines = []
    for site in DEMO_SITES:
        app = make_site(issuer, site, known[site["client_id"]])
        url = demo_site_url(issuer, site)
        port = int(url.rsplit(":", 1)[1])
        server = make_server(host, port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        lines.append(f"demo site {site['name']}: {url}")
    from .cas_site import start_cas_site

    lines.append(start_cas_site(issuer, host))
    from .saml_site import start_saml_site

    lines.append(start_saml_site(issuer, host, instance_path))
    return lines
