"""Unified identity authentication server (统一身份认证平台): an OpenID Connect provider."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from werkzeug.exceptions import HTTPException

from . import http_limits, settings
from .extensions import babel, csrf, db, engine_options, migrate

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def create_app(overrides: dict[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    """The provider, set up in named steps; configuration is checked before anything
    starts (``settings.validate``), so a bad setting stops start-up with one line."""
    instance_path = instance_path or os.environ.get("IDP_INSTANCE_PATH") or os.path.join(
        ROOT, "instance")
    app = Flask(__name__, instance_path=os.path.abspath(instance_path))
    http_limits.install(app)
    cfg = settings.load(app.instance_path, overrides)
    settings.validate(cfg, instance_path=app.instance_path)
    _configure(app, cfg)
    _trust_proxies(app, cfg)
    _init_extensions(app, cfg)
    _init_services(app, cfg)
    _register_blueprints(app)
    _install_hooks(app)
    return app


def _configure(app: Flask, cfg: dict[str, Any]) -> None:
    app.config.update(cfg)
    plain_http = cfg["ISSUER"].startswith("http://")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=cfg["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(cfg),
        SESSION_COOKIE_NAME=cfg["UI_COOKIE_NAME"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not plain_http,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session cookie; pages may sit open long
        BABEL_DEFAULT_LOCALE="zh_CN",
        BABEL_TRANSLATION_DIRECTORIES=os.path.join(HERE, "translations"),
        JSON_AS_ASCII=False,
        # The largest thing anyone sends is a face capture (2 MB); refuse bigger bodies
        # before Flask parses them.
        MAX_CONTENT_LENGTH=cfg.get("MAX_REQUEST_BYTES") or 4 * 1024 * 1024,
    )
    app.json.ensure_ascii = False


def _trust_proxies(app: Flask, cfg: dict[str, Any]) -> None:
    proxies = int(cfg.get("TRUSTED_PROXIES") or 0)
    if proxies:
        # Behind a load balancer every request comes from its address: per-address
        # limits (SMS, device codes, lockout) and the audit log need the client's, which
        # only the configured number of trusted hops may tell us (X-Forwarded-For/Proto).
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)


def _init_extensions(app: Flask, cfg: dict[str, Any]) -> None:
    from .logging_setup import install_masking_filter
    from .translations import compile_catalogs
    from .ui import select_locale

    install_masking_filter()
    compile_catalogs(os.path.join(HERE, "translations"))
    db.init_app(app)
    from .audit import models as _audit_models  # noqa: F401  (registers the table)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    with app.app_context():
        if cfg["DATABASE_URL"].startswith("sqlite"):
            _tune_sqlite(db.engine)


def _init_services(app: Flask, cfg: dict[str, Any]) -> None:
    """The short-lived store, keys, field encryption and the OAuth server, each once per
    process and shared by every request."""
    from .crypto.envelope import load as load_data_keys
    from .crypto.fieldcrypt import FieldCrypto, parse_kek
    from .crypto.keys import KeyRing
    from .oidc.server import build_server
    from .store import make_store

    app.extensions["idp.store"] = make_store(cfg, lambda: db.engine)
    app.extensions["idp.keys"] = KeyRing()
    previous = cfg.get("KEK_PREVIOUS")  # set only while `idp kek rotate` moves off it
    app.extensions["idp.fieldcrypto"] = FieldCrypto(
        parse_kek(cfg["KEK"]), parse_kek(previous) if previous else None, loader=load_data_keys)
    app.extensions["idp.oauth"] = build_server(app)


def _register_blueprints(app: Flask) -> None:
    import admin

    from . import channels, demo
    from .account import bp as account_bp
    from .account.recovery import bp as recovery_bp
    from .account.registration import bp as registration_bp
    from .authn.cert_login import bp as cert_login_bp
    from .authn.security_views import bp as security_bp
    from .authn.sms_login import bp as sms_login_bp
    from .authn.stepup import bp as stepup_bp
    from .authn.upstream_views import bp as upstream_bp
    from .authn.views import bp as authn_bp
    from .authn.webauthn_views import bp as passkey_bp
    from .cas.views import bp as cas_bp
    from .oidc.views import bp as oidc_bp

    channels.init_app(app, app.extensions["idp.oauth"])
    demo.init_app(app)
    for bp in (oidc_bp, authn_bp, stepup_bp, upstream_bp, sms_login_bp, cert_login_bp,
               security_bp, passkey_bp, account_bp, registration_bp, recovery_bp):
        app.register_blueprint(bp)
    from .display import bp as display_bp

    app.register_blueprint(display_bp)  # the elder-friendly display switch
    from .interaction.views import bp as interaction_bp

    app.register_blueprint(interaction_bp)  # more time for a sign-in request
    app.register_blueprint(cas_bp)  # CAS 3.0 under /cas
    from . import saml

    saml.init_app(app)  # SAML 2.0 IdP under /saml
    admin.init_app(app)


def _install_hooks(app: Flask) -> None:
    from .authn import new_device
    from .authn import session as sso
    from .ui import template_context

    app.before_request(_fresh_request_state)
    app.before_request(http_limits.refuse_nul_characters)
    app.context_processor(template_context)
    app.after_request(sso.apply_cookie)
    app.after_request(new_device.apply_cookie)
    app.after_request(_security_headers)
    _error_handlers(app)
    from . import availability, health, metrics

    availability.install(app, _wants_json)  # Redis/PostgreSQL down: 503, fail closed
    health.init_app(app)
    metrics.init_app(app)


def cli_commands() -> list:
    """Command groups the ``idp`` command takes from ``admin/``, which only this module
    may import (the console's package sits above the provider)."""
    from admin.cli import admin_group

    return [admin_group]


def _tune_sqlite(engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()


def _fresh_request_state() -> None:
    # ``g`` lives as long as the app context, and an app context that is already
    # pushed (CLI commands, tests, background jobs) is reused by requests; per-request
    # values must not leak from one request into the next.
    from flask import current_app, g

    for name in [n for n in g if n.startswith("idp_")]:
        g.pop(name)
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)  # Flask-WTF's


def _security_headers(response):
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: Flask-WTF refuses a form POST over HTTPS without a
    # same-site Referer (WTF_CSRF_SSL_STRICT); other sites still learn nothing.
    h.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        h.setdefault("Cache-Control", "no-store")
    return response


def _wants_json() -> bool:
    return request.path in ("/token", "/introspect", "/revoke", "/userinfo",
                            "/device_authorization", "/bc-authorize") or (
        request.path.startswith(("/api/", "/admin/api/"))
        or request.accept_mimetypes.best == "application/json" or request.is_json)


def _error_handlers(app: Flask) -> None:
    from .oidc.server import BAD_CHARACTERS, refuses_error_text

    log = logging.getLogger("idp")

    @app.errorhandler(CSRFError)
    def _csrf(err):
        return render_template("error.html", title=_("页面已过期"),
                               detail=_("请返回上一页刷新后重试。")), 400

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        if _wants_json():
            return jsonify(error="invalid_request", error_description=err.description), err.code
        from .error_pages import http_error

        return http_error(err)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if refuses_error_text(err):
            # Authlib would not even build the error (a parameter we quote has characters
            # RFC 6749 forbids in error_description): the request was bad, not the server.
            db.session.rollback()
            if _wants_json():
                return jsonify(error="invalid_request", error_description=BAD_CHARACTERS), 400
            return render_template("error.html", title=_("无法完成登录请求"),
                                   detail=f"invalid_request: {BAD_CHARACTERS}"), 400
        # Never a stack trace to the user; the log line is masked by the logging filter.
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if _wants_json():
            return jsonify(error="server_error",
                           error_description="The server could not process the request."), 500
        return render_template("error.html", title=_("服务暂时不可用"),
                               detail=_("请稍后再试。")), 500
