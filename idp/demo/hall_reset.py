"""The service-hall console's password reset (demo): a clerk who has checked a citizen's
ID card in person gets a one-time reset code for them from ``POST /recover/counter``
(:mod:`idp.account.counter_reset`), with the demo hall client's own credentials, and
hands it over on a slip; the citizen types it at ``/recover/code``. For a phone change
when the phone is lost, the clerk vouches for the reference the citizen shows
(``/demo/hall/phone``). Like the other
consoles it talks to the provider over HTTP only, as a real counter application would."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from .ciba_demo import CONSOLES, _call, _credentials, _message

bp = Blueprint("hall_reset", __name__, url_prefix="/demo/hall")


@bp.route("/reset", methods=["GET", "POST"])
def page():
    cfg = CONSOLES["hall"]
    form = {"login_hint": "", "acting_party": cfg["staff"]}
    error = slip = None
    if request.method == "POST":
        form = {k: (request.form.get(k) or "").strip()[:64] for k in form}
        if request.form.get("checked") != "document":
            error = _("请先当面核对居民身份证原件，并勾选确认。")
        elif (auth := _credentials(cfg["client_id"])) is None:
            error = _("演示柜台尚未初始化：请先运行 idp init --demo。")
        else:
            status, body = _call("/recover/counter", auth, form)
            if status == 200 and body.get("reset_code"):
                slip = {"code": body["reset_code"],
                        "minutes": max(1, int(body.get("expires_in") or 1800) // 60)}
            else:
                error = _message(body.get("error"))
    return render_template("hall_reset.html", form=form, error=error, slip=slip), (
        400 if error else 200)


@bp.route("/phone", methods=["GET", "POST"])
def phone():
    """The counter's half of a phone change for a citizen whose phone is lost
    (:mod:`idp.account.counter_phone`): the ID card checked, the reference the citizen
    shows is vouched for at ``POST /account/phone/counter``."""
    cfg = CONSOLES["hall"]
    form = {"login_hint": "", "acting_party": cfg["staff"], "reference": ""}
    error = done = None
    if request.method == "POST":
        form = {k: (request.form.get(k) or "").strip()[:64] for k in form}
        if request.form.get("checked") != "document":
            error = _("请先当面核对居民身份证原件，并勾选确认。")
        elif (auth := _credentials(cfg["client_id"])) is None:
            error = _("演示柜台尚未初始化：请先运行 idp init --demo。")
        else:
            status, body = _call("/account/phone/counter", auth, form)
            if status == 200 and body.get("status") == "verified":
                done = {"minutes": max(1, int(body.get("expires_in") or 1800) // 60)}
                form["reference"] = ""
            elif body.get("error") == "invalid_grant":
                error = _("办理码无效、已过期、已使用，或不属于该证件号码的账号。请核对后重试。")
            else:
                error = _message(body.get("error"))
    return render_template("hall_phone.html", form=form, error=error, done=done), (
        400 if error else 200)


def register(app) -> None:
    app.register_blueprint(bp)
