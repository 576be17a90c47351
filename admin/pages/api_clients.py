"""API credentials: each administrator makes their own admin API client, which acts for
them with some of the admin:* scopes their roles open (admin.roles.scopes_for). The
secret is shown once, in the answer to the POST."""

from __future__ import annotations

from flask import g, render_template, request
from flask_babel import gettext as _

from idp.clients import ClientError
from idp.extensions import db
from idp.models import Client

from .. import api_credentials, auth, roles
from ..views import bp


def _mine() -> list[Client]:
    return api_credentials.owned_by(g.admin_owner)[0]


def _render(*, created=None, secret=None, error=None, status=200):
    return render_template("admin/api_clients.html", mine=_mine(),
                           scopes=roles.scopes_for(g.admin_roles), created=created,
                           secret=secret, error=error), status, {"Cache-Control": "no-store"}


@bp.get("/api-clients")
@auth.require("api_clients.own")
def api_clients():
    return _render()


@bp.post("/api-clients")
@auth.require("api_clients.own")
def api_clients_new():
    name = request.form.get("name", "").strip()[:255]
    scopes = [s for s in request.form.getlist("scopes") if s in roles.SCOPES]
    if not name or not scopes:
        return _render(error=_("请填写名称并至少选择一个范围。"), status=400)
    try:
        row, secret = api_credentials.create(name, scopes, owner=g.admin_owner, held=g.admin_roles)
    except ClientError as exc:
        db.session.rollback()
        return _render(error=str(exc), status=403)
    return _render(created=row, secret=secret, status=201)
