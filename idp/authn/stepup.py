"""Step-up: raise a signed-in session to the assurance level an authorization asks for.

``/authorize`` sends the browser here when the session's ``acr`` is below the lowest
level in ``acr_values``. This page offers the authenticators that can reach that level
for this person; when none can, it says so and lets the person go back, and the
authorization ends with ``unmet_authentication_requirements``.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from flask_babel import gettext as _

from .. import audit
from ..clients import find_client
from ..oidc import pending
from . import assurance
from . import session as sso

bp = Blueprint("stepup", __name__)


def _expired():
    return render_template("error.html", title=_("授权请求已过期"),
                           detail=_("请回到原网站重新点击登录。")), 400


@bp.route("/login/step-up", methods=["GET", "POST"])
def page():
    rid = request.values.get("rid")
    rec = pending.load(rid)
    sess = sso.current()
    if rec is None or sess is None:
        return _expired()
    client = find_client(rec["params"].get("client_id", ""))
    asked = assurance.required_level(rec["params"].get("acr_values"))
    if request.method == "POST" and request.form.get("action") == "give_up":
        rec["unmet"] = True
        pending.update(rid, rec)
        audit.record("stepup.unmet", actor=sess.person_id, subject=sess.person_id,
                     client_id=client.client_id if client else None,
                     details={"asked": asked, "reached": sess.acr})
        return redirect(pending.resume_url(rid, rec))
    if assurance.meets(sess.acr, asked):
        return redirect(pending.resume_url(rid, rec))
    return render_template("step_up.html", rid=rid, client=client, asked=asked,
                           reached=sess.acr, options=[])
