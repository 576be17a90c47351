"""Relying parties (system administrator): list, register, edit, disable / enable,
delete, rotate the secret, figures; and the separate tab of registrations waiting for
approval (``status = pending``, e.g. from dynamic registration).

A new secret is shown once, in the answer to the POST that made it (``no-store``);
it is never flashed (that would put it in the session cookie) nor kept.
"""

from __future__ import annotations

import json

from flask import abort, flash, g, get_flashed_messages, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp import audit, client_admin, onboarding
from idp.clients import ClientError, register_client
from idp.crypto.keys import SIGNING_ALGS
from idp.extensions import db
from idp.oidc.profile import FAPI2
from idp.policy import GRANT_TYPES

from .. import auth
from ..views import bp
from .common import PER_PAGE, page_arg, pages

CHANNELS = {"web": _l("网站"), "app": _l("移动应用"), "kiosk": _l("自助终端"),
            "hall": _l("政务大厅"), "hotline": _l("服务热线")}
STATUS = {"active": _l("启用"), "disabled": _l("已停用"), "pending": _l("待审批")}
PROFILES = {FAPI2: _l("FAPI 2.0")}
AUTH_METHODS = {"client_secret_basic": "client_secret_basic",
                "client_secret_post": "client_secret_post",
                "private_key_jwt": "private_key_jwt", "none": _l("公开客户端（PKCE）")}


def _lines(name: str) -> list[str]:
    return [u.strip() for u in request.form.get(name, "").splitlines() if u.strip()][:20]


def _form_values() -> dict:
    """The edit / register form as service arguments; ClientError for bad JSON."""
    raw_jwks = request.form.get("jwks", "").strip()
    try:
        jwks = json.loads(raw_jwks) if raw_jwks else None
    except ValueError:
        raise ClientError("the JWKS is not valid JSON") from None
    if jwks is not None and not isinstance(jwks, dict):
        raise ClientError("the JWKS must be a JSON object with keys")
    return {"name": request.form.get("name", "").strip()[:255],
            "redirect_uris": _lines("redirect_uris"),
            "post_logout_redirect_uris": _lines("post_logout_redirect_uris"),
            "backchannel_logout_uri": request.form.get("backchannel_logout_uri", "").strip()
            or None,
            "grant_types": [x for x in request.form.getlist("grant_types") if x in GRANT_TYPES],
            "sensitive_scopes": ["idcard"] if request.form.get("idcard") == "1" else [],
            "channel": request.form.get("channel", "web"),
            "id_token_alg": request.form.get("id_token_alg") or None,
            "jwks": jwks, "jwks_uri": request.form.get("jwks_uri", "").strip() or None,
            "first_party": request.form.get("first_party") == "1",
            "profile": request.form.get("profile", "").strip()[:32] or None}


def _listing(status: str | None, template: str):
    channel = request.args.get("channel") or None
    channel = channel if channel in CHANNELS else None
    q = (request.args.get("q") or "").strip()[:128] or None
    number = page_arg()
    rows, total = client_admin.listing(status=status, channel=channel, q=q, page=number,
                                       per_page=PER_PAGE)
    args = {k: v for k, v in (("channel", channel), ("q", q)) if v}
    wanted = request.args.get("status")
    if status is None and wanted in STATUS:
        rows, total = client_admin.listing(status=wanted, channel=channel, q=q, page=number,
                                           per_page=PER_PAGE)
        args["status"] = wanted
    return render_template(template, rows=[client_admin.describe(r) for r in rows],
                           total=total, page=number, pages=pages(total), args=args,
                           channels=CHANNELS, statuses=STATUS, channel=channel, q=q,
                           status=args.get("status"), notices=get_flashed_messages())


@bp.get("/clients")
@auth.require("clients.read")
def clients():
    return _listing(None, "admin/clients.html")


@bp.get("/clients/pending")
@auth.require("clients.read")
def pending_clients():
    return _listing("pending", "admin/clients_pending.html")


def _render_client(client_id: str, *, error=None, status=200, secret=None, form=None):
    row = client_admin.get(client_id)
    if row is None:
        abort(404)
    info = client_admin.describe(row)
    asked = onboarding.requested(row) if row.status == "pending" else None
    return render_template("admin/client.html", c=info, asked=asked,
                           stats=client_admin.stats(client_id),
                           error=error, secret=secret, f=form or info, channels=CHANNELS,
                           statuses=STATUS, algs=SIGNING_ALGS, grants=sorted(GRANT_TYPES),
                           profiles=PROFILES, may_write="clients.write" in g.admin_perms,
                           protected=client_id in client_admin.PROTECTED,
                           notices=get_flashed_messages()), status, {"Cache-Control": "no-store"}


@bp.get("/clients/<client_id>")
@auth.require("clients.read")
def client(client_id: str):
    return _render_client(client_id)


def _client_error(exc: ClientError | str) -> str:
    if isinstance(exc, client_admin.ProfileError):
        return _("未保存：该应用的注册信息不满足 FAPI 2.0 安全配置的要求（%(reason)s）。",
                 reason=exc.reason)
    return _("未保存：%(reason)s", reason=str(exc))


@bp.post("/clients/<client_id>/edit")
@auth.require("clients.write")
def client_edit(client_id: str):
    if client_admin.get(client_id) is None:
        abort(404)
    try:
        values = _form_values()
        client_admin.update(client_id, values, actor=g.admin_id)
    except ClientError as exc:
        db.session.rollback()
        return _render_client(client_id, error=_client_error(exc), status=400)
    flash(_("已保存。"))
    return redirect(url_for(".client", client_id=client_id))


@bp.post("/clients/<client_id>/approve")
@auth.require("clients.write")
def client_approve(client_id: str):
    """A pending (dynamically registered) client goes live (idp.onboarding); what it asked
    for beyond the basics only when ticked here."""
    if client_admin.get(client_id) is None:
        abort(404)
    try:
        onboarding.approve_client(client_id, actor=g.admin_id,
                                  grant_sensitive=request.form.get("grant_sensitive") == "1",
                                  grant_channel=request.form.get("grant_channel") == "1",
                                  reason=request.form.get("reason", "").strip()[:500])
    except ClientError as exc:
        db.session.rollback()
        return _render_client(client_id, error=_client_error(exc), status=400)
    flash(_("已批准，应用已启用。"))
    return redirect(url_for(".client", client_id=client_id))


@bp.post("/clients/<client_id>/reject")
@auth.require("clients.write")
def client_reject(client_id: str):
    if client_admin.get(client_id) is None:
        abort(404)
    try:
        onboarding.reject_client(client_id, actor=g.admin_id,
                                 reason=request.form.get("reason", "").strip()[:500])
    except ClientError as exc:
        db.session.rollback()
        return _render_client(client_id, error=_client_error(exc), status=400)
    flash(_("已驳回注册申请 %(id)s。", id=client_id))
    return redirect(url_for(".pending_clients"))


@bp.post("/clients/<client_id>/<action>")
@auth.require("clients.write")
def client_action(client_id: str, action: str):
    if client_admin.get(client_id) is None or action not in (
            "disable", "enable", "delete", "rotate-secret"):
        abort(404)
    reason = request.form.get("reason", "").strip()[:500]
    try:
        if action == "rotate-secret":
            grace = request.form.get("grace_hours", "24")
            hours = int(grace) if grace.isascii() and grace.isdigit() and len(grace) < 5 else -1
            secret, _until = client_admin.rotate_secret(client_id, actor=g.admin_id,
                                                        grace_seconds=hours * 3600)
            return _render_client(client_id, secret=secret)
        if action == "delete":
            if request.form.get("confirm") != client_id:
                return _render_client(client_id, error=_("请输入应用编号以确认删除。"),
                                      status=400)
            client_admin.delete(client_id, actor=g.admin_id, reason=reason)
            flash(_("已删除应用 %(id)s。", id=client_id))
            return redirect(url_for(".clients"))
        client_admin.set_status(client_id, "disabled" if action == "disable" else "active",
                                actor=g.admin_id, reason=reason)
    except ClientError as exc:
        db.session.rollback()
        return _render_client(client_id, error=_client_error(exc), status=400)
    flash(_("已停用。") if action == "disable" else _("已启用。"))
    return redirect(url_for(".client", client_id=client_id))


@bp.route("/clients/new", methods=["GET", "POST"])
@auth.require("clients.write")
def client_new():
    error, form = None, None
    if request.method == "POST":
        import secrets

        auth_method = request.form.get("auth_method", "client_secret_basic")
        client_id = request.form.get("client_id", "").strip() or "rp-" + secrets.token_hex(6)
        try:
            if auth_method not in AUTH_METHODS:
                raise ClientError("unknown authentication method")
            values = _form_values()
            if not values["name"]:
                raise ClientError("name is required")
            if values.pop("jwks_uri"):
                raise ClientError("register with jwks; jwks_uri can be set afterwards")
            secret = secrets.token_urlsafe(32) if auth_method.startswith("client_secret") \
                else None
            profile = values.pop("profile")
            if profile and profile not in PROFILES:
                raise ClientError("unknown security profile")
            row = register_client(client_id=client_id, secret=secret, auth_method=auth_method,
                                  **{k: v for k, v in values.items()
                                     if k not in ("id_token_alg", "sensitive_scopes")},
                                  sensitive_scopes=values["sensitive_scopes"],
                                  id_token_alg=values["id_token_alg"],
                                  security={"profile": profile} if profile else None)
        except ClientError as exc:
            db.session.rollback()
            error, form = _client_error(exc), dict(request.form)
        else:
            audit.record("admin.client.add", actor=g.admin_id, client_id=row.client_id,
                         details={"channel": row.channel, "auth_method": auth_method,
                                  "profile": profile})
            return _render_client(row.client_id, secret=secret, status=201)
    return render_template("admin/client_new.html", error=error, f=form or {},
                           channels=CHANNELS, algs=SIGNING_ALGS, grants=sorted(GRANT_TYPES),
                           auth_methods=AUTH_METHODS, profiles=PROFILES), 400 if error else 200
