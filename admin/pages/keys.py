"""Signing keys (system administrator): per algorithm, state and retirement; rotate."""

from __future__ import annotations

from flask import flash, g, get_flashed_messages, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.crypto.keys import SIGNING_ALGS, verification_window

from .. import auth, keys_view
from ..views import bp


@bp.get("/keys")
@auth.require("keys.read")
def keys():
    rows = keys_view.listing()
    by_alg = {alg: [k for k in rows if k.alg == alg] for alg in SIGNING_ALGS}
    return render_template("admin/keys.html", by_alg=by_alg,
                           window_hours=round(verification_window() / 3600, 1),
                           may_write="keys.write" in g.admin_perms,
                           notices=get_flashed_messages())


@bp.post("/keys/rotate")
@auth.require("keys.write")
def keys_rotate():
    alg = request.form.get("alg", "")
    try:
        key, _retired = keys_view.rotate(alg, actor=g.admin_id)
    except ValueError:
        flash(_("不支持的算法。"))
        return redirect(url_for(".keys"))
    flash(_("已为 %(alg)s 生成新密钥 %(kid)s；旧密钥在其令牌全部过期后退役。",
            alg=alg, kid=key.kid))
    return redirect(url_for(".keys"))
