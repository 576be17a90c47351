"""A CAS-protected demo website beside the two OpenID Connect ones, so a newcomer sees
the protocols share one sign-in: signed in on the province portal, this site signs in
by itself (a CAS ``gateway`` check on arrival); logging out anywhere ends it too (CAS
single logout).

It is a plain CAS 3.0 client: redirect to ``/cas/login``, validate the ticket server to
server at ``/cas/p3/serviceValidate?format=JSON``, accept the provider's logout request
POSTed to the service URL."""

from __future__ import annotations

import re
import secrets
import threading
from urllib.parse import urlencode

import requests
from flask import Flask, redirect, render_template_string, request, session
from werkzeug.serving import make_server

from .seed import CAS_SITE
from .urls import demo_site_url

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ name }}</title>
<style>body{font-family:system-ui,"Microsoft YaHei",sans-serif;margin:0;background:#f6f7f9}
header{background:#8a4b08;color:#fff;padding:1rem}main{max-width:32rem;margin:1rem auto;
background:#fff;padding:1.5rem;border-radius:8px}a.b{display:inline-block;padding:.7rem 1.4rem;
background:#8a4b08;color:#fff;border-radius:6px;text-decoration:none}</style></head><body>
<header><strong>{{ name }}</strong>（CAS 接入）</header><main>
{% if user %}<p id="status" data-state="signed-in">已登录：{{ user.name }}（{{ user.number }}）</p>
<p>认证等级 acr：<code>{{ user.acr }}</code></p>
<p><a class="b" id="logout" href="/logout">退出登录</a></p>
{% else %}<p id="status" data-state="signed-out">未登录</p>
<p><a class="b" id="login" href="/login">通过统一身份认证平台登录</a></p>{% endif %}
</main></body></html>"""

# The ticket named in a CAS logout request (our tickets are "ST-" and hex digits). A
# pattern, not an XML parser, for a body anyone could post.
_SESSION_INDEX = re.compile(r"<(?:\w+:)?SessionIndex>\s*(ST-[0-9a-f]{1,200})\s*</")


def make_cas_site(issuer: str) -> Flask:
    app = Flask("demo-cas")
    app.secret_key = secrets.token_hex(32)
    app.config["SESSION_COOKIE_NAME"] = "rp_cas"
    base = demo_site_url(issuer, CAS_SITE)
    service = base + "/cas-callback"
    logged_out: set[str] = set()  # tickets whose sign-in ended (CAS single logout)

    def current_user():
        user = session.get("user")
        if user and user["ticket"] in logged_out:
            session.clear()
            return None
        return user

    def login_url(**extra) -> str:
        return issuer + "/cas/login?" + urlencode({"service": service, **extra})

    @app.get("/")
    def home():
        user = current_user()
        if user is None and not session.get("gateway_tried"):
            session["gateway_tried"] = True
            return redirect(login_url(gateway="true"))  # signed in elsewhere? no page shown
        return render_template_string(PAGE, name=CAS_SITE["name"], user=user)

    @app.get("/login")
    def login():
        return redirect(login_url())

    @app.get("/cas-callback")
    def callback():
        ticket = request.args.get("ticket")
        if not ticket:
            return redirect("/")  # gateway: not signed in anywhere
        resp = requests.get(issuer + "/cas/p3/serviceValidate", timeout=10, params={
            "service": service, "ticket": ticket, "format": "JSON"})
        ok = (resp.json().get("serviceResponse") or {}).get("authenticationSuccess")
        if not ok:
            return redirect("/")
        attrs = ok.get("attributes") or {}
        session["user"] = {"name": (attrs.get("name") or [""])[0],
                           "number": (attrs.get("id_number_masked") or [""])[0],
                           "acr": (attrs.get("acr") or [""])[0], "ticket": ticket}
        return redirect("/")

    @app.post("/cas-callback")
    def single_logout():
        found = _SESSION_INDEX.search(request.form.get("logoutRequest", ""))
        if found:
            logged_out.add(found.group(1))
        return "", 200

    @app.get("/logout")
    def logout():
        session.pop("user", None)
        session["gateway_tried"] = True
        return redirect(issuer + "/cas/logout?" + urlencode({"service": base + "/"}))

    return app


def start_cas_site(issuer: str, host: str) -> str:
    url = demo_site_url(issuer, CAS_SITE)
    port = int(url.rsplit(":", 1)[1])
    try:
        server = make_server(host, port, make_cas_site(issuer), threaded=True)
    except OSError as exc:  # the port is taken: the provider and the other sites still run
        return f"demo site {CAS_SITE['name']} (CAS) not started: port {port}: {exc.strerror}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"demo site {CAS_SITE['name']} (CAS): {url}"
