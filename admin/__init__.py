"""The admin console (``/admin``), its REST API (``/admin/api``, OpenAPI at
``/admin/api/openapi.json``) and the ``idp admin`` commands (:mod:`admin.cli`).

Only the app factory imports this package (``init_app``, and ``idp.cli_commands``,
through which the ``idp`` command gets :mod:`admin.cli`). Decisions go through
``connectors.review`` and ``connectors.merge``, which the ``idp merge`` commands use too.
Who may enter, and how the console gets an ``L3`` session, is in :mod:`admin.auth`.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from . import pages  # noqa: F401 - the pages beyond the queue, on the same blueprint
    from .api import bp as api_bp
    from .views import bp as views_bp

    app.register_blueprint(views_bp)
    app.register_blueprint(api_bp)
    # Admin API clients ask for admin:* scopes with client credentials: the token
    # endpoint must know them (they are not advertised in discovery: not for RPs).
    from .roles import SCOPES

    server = app.extensions.get("idp.oauth")
    if server is not None and server.scopes_supported:
        server.scopes_supported = [*server.scopes_supported,
                                   *(s for s in SCOPES if s not in server.scopes_supported)]
