"""The admin REST API (``/admin/api/…``), described at ``/admin/api/openapi.json``.

Two ways to authenticate, one set of permissions (:mod:`admin.roles`):

- the console's own: the browser's single sign-on session of a person with an admin
  role at ``L3`` (:mod:`admin.auth`), with the CSRF token of ``GET /admin/api/csrf`` in
  an ``X-CSRFToken`` header on every write;
- a script's: a client-credentials access token (``Authorization: Bearer``) of an admin
  API client an administrator made (``POST /admin/api/api-clients``), which acts for that
  administrator with at most their permissions, narrowed to its ``admin:*`` scopes.

Errors are JSON ``{"error": …, "error_description": …}``. Each endpoint is declared once
(:mod:`admin.api.spec`): the same pydantic models validate it and describe it.
"""

from __future__ import annotations

from flask import g, jsonify
from flask_wtf.csrf import CSRFError, generate_csrf
from pydantic import BaseModel

from idp.extensions import csrf

from . import spec
from .spec import APIError, bp, endpoint

# Bearer-token requests carry no cookie to forge; session requests are checked for
# CSRF by admin.auth.require, so the app-wide check (which would refuse scripts) is off.
csrf.exempt(bp)


@bp.errorhandler(CSRFError)
def _csrf(err):
    return jsonify(error="invalid_csrf_token",
                   error_description="Send the token of GET /admin/api/csrf in X-CSRFToken."), 400


@bp.errorhandler(404)
def _missing(err):
    return jsonify(error="not_found", error_description="No such object or path."), 404


@bp.errorhandler(405)
def _method(err):
    return jsonify(error="invalid_request", error_description="Method not allowed."), 405


class CsrfOut(BaseModel):
    csrf_token: str


@endpoint("get", "/csrf", summary="The CSRF token for this session (session only)",
          permission="api_clients.own", tag="session", out=CsrfOut)
def csrf_token():
    if g.admin_bearer:  # a script's token has no session to protect
        raise APIError(403, "access_denied", "the CSRF token is for a browser session")
    return {"csrf_token": generate_csrf()}


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec.openapi_document())


from . import (  # noqa: E402,F401 - each module registers its endpoints
    audit_api,
    clients_api,
    keys_api,
    people_api,
    review,
    stats_api,
)
