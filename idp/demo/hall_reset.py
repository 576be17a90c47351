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


def _counter_post(path: str, fields: tuple[str, ...]
                  ) -> tuple[dict, str | None, tuple[int, dict] | None]:
    """A clerk's form for a counter endpoint: the fields as typed (or their defaults),
    the error to show, and the provider's (status, answer) when it was asked. The clerk must tick
    that the ID card was checked in person before anything is sent."""
    cfg = CONSOLES["hall"]
    form = {k: "" for k in fields} | {"acting_party": cfg["staff"]}
    if request.method != "POST":
        return form, None, None
    form = {k: (request.form.get(k) or "").strip()[:64] for k in form}
    if request.form.get("checked") != "document":
        return form, _("请先当面核对居民身份证原件，并勾选确认。"), None
    if (auth := _credentials(cfg["client_id"])) is None:
        return form, _("演示柜台尚未初始化：请先运行 idp init --demo。"), None
    return form, None, _call(path, auth, form)


def _minutes(body: dict) -> int:
    return max(1, int(body.get("expires_in") or 1800) // 60)


@bp.route("/reset", methods=["GET", "POST"])
def page():
    form, error, answer = _counter_post("/recover/counter", ("login_hint", "acting_party"))
    slip = None
    if answer is not None:
        status, body = answer
        if status == 200 and body.get("reset_code"):
            slip = {"code": body["reset_code"], "minutes": _minutes(body)}
        else:
            error = _message(body.get("error"))
    return render_template("hall_reset.html", form=form, error=error, slip=slip), (
        400 if error else 200)


@bp.route("/phone", methods=["GET", "POST"])
def phone():
    """The counter's half of a phone change for a citizen whose phone is lost
    (:mod:`idp.account.counter_phone`): the ID card checked, the reference the citizen
    shows is vouched for at ``POST /account/phone/counter``."""
    form, error, answer = _counter_post("/account/phone/counter",
                                        ("login_hint", "acting_party", "reference"))
    done = None
    if answer is not None:
        status, body = answer
        if status == 200 and body.get("status") == "verified":
            done = {"minutes": _minutes(body)}
            form["reference"] = ""
        elif body.get("error") == "invalid_grant":
            error = _("办理码无效、已过期、已使用，或不属于该证件号码的账号。请核对后重试。")
        else:
            error = _message(body.get("error"))
    return render_template("hall_phone.html", form=form, error=error, done=done), (
        400 if error else 200)


def register(app) -> None:
    app.register_blueprint(bp)
