"""Scan-to-login: a website or kiosk shows a QR code, the person's signed-in app scans
it and approves, and the browser that showed the code is signed in.

The code holds a URL with a random ticket (an ``approvals`` request of kind ``qr``).
The ticket is bound to the browser that asked for it (the ``bid`` of its signed UI
cookie), so the ticket id alone — in a photo of the screen, a shoulder-surfed URL, a
proxy log — cannot be polled or completed from anywhere else. It is single use and
lives two minutes. The session it starts is never stronger than the app's own: the
app's ``acr`` caps the level, and ``amr`` says "qr" next to how the app signed in.

Binding the ticket to a browser does not stop QR login hijacking: an attacker asks for
a ticket in their own browser and shows its code to the victim ("scan to claim your
subsidy"); the victim's approval signs the attacker in. What stops it is the victim
seeing *where* the sign-in would happen. So the ticket records the asking browser's
coarse network (IPv4 /24, IPv6 /48) and a device summary (browser and system) from
its User-Agent; the app shows both with a warning, and is told when it scans from a
network other than the ticket's (``different_network``). A User-Agent can be forged,
a network much less easily.
"""

from __future__ import annotations

import time

import segno
from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from .. import audit, interaction, policy, ratelimit
from ..authn import assurance
from ..authn import session as sso
from ..clients import find_client
from ..devices import coarse_network, device_summary
from ..oidc.grants import active_person
from ..store import store
from . import approvals
from . import no_store_json as _json

bp = Blueprint("qr", __name__, url_prefix="/qr")


def scan_url(ticket: str) -> str:
    """What the QR code says: the app recognises this issuer's ``/qr/s/`` URLs."""
    return current_app.config["ISSUER"] + url_for("qr.scan_landing", ticket=ticket)


def _mine(a: approvals.Approval | None) -> bool:
    """Whether ``a`` is a QR ticket this browser asked for (unknown and foreign tickets
    look the same)."""
    bid = session.get("bid")
    return a is not None and a.kind == "qr" and bool(bid) and a.extra.get("browser") == bid


@bp.post("/ticket")
def ticket():
    """A fresh ticket and its QR code (CSRF-protected: only our login page asks)."""
    cfg = current_app.config
    data = request.get_json(silent=True)
    data = data if isinstance(data, dict) else request.form
    rid = data.get("rid") or None
    req = interaction.load(rid) if rid else None
    if rid and req is None:
        return _json({"error": "expired_request",
                      "error_description": "The sign-in request has expired."}, 400)
    # One definition of "this browser": the id the pending authorization is bound to.
    bid = interaction.browser_id()
    # Per browser, and per address: a fresh cookie is a fresh browser, so the browser
    # limit alone would not bound what one caller makes the store hold.
    if ratelimit.exceeded("qr_ticket", cfg["QR_TICKETS_PER_ADDRESS_PER_MINUTE"], 60) \
            or store().incr(f"qr_tickets:{bid}", 60) > cfg["QR_TICKETS_PER_MINUTE"]:
        return _json({"error": "slow_down",
                      "error_description": "Too many QR codes; wait a minute."}, 429)
    client = req.client if req else None
    network, shown = coarse_network(request.remote_addr) or (None, None)
    a = approvals.create(
        "qr", client.client_id if client else "", ttl=cfg["QR_TICKET_TTL"],
        extra={"browser": bid, "rid": rid,
               "client_name": (client.name or client.client_id) if client
               else _("统一身份认证平台"),
               "network": network, "network_shown": shown,
               "device": device_summary(request.headers.get("User-Agent"))})
    url = scan_url(a.id)
    image = segno.make(url, error="m").svg_data_uri(scale=5, border=2)
    return _json({"ticket": a.id, "url": url, "qr": image, "expires_in": cfg["QR_TICKET_TTL"],
                  "poll_ms": cfg["QR_POLL_INTERVAL_MS"]})


@bp.get("/status/<ticket>")
def status(ticket: str):
    a = approvals.get(ticket)
    if not _mine(a):
        return _json({"state": "unknown"}, 404)
    if a.expired:
        state = "expired"
    elif a.state == "pending":
        state = "scanned" if a.person_id else "pending"
    else:
        state = a.state  # approved | denied
    return _json({"state": state, "expires_in": max(0, int(a.expires - time.time()))})


def _refused(title: str, detail: str, status_code: int, rid: str | None = None):
    again = url_for("authn.login", rid=rid) if rid and interaction.load(rid) else url_for(
        "authn.login")
    return render_template("qr_result.html", title=title, detail=detail, again=again), status_code


@bp.post("/complete")
def complete():
    """The approved ticket becomes this browser's SSO session, once."""
    a = approvals.get(request.form.get("ticket", ""))
    if a is not None and a.kind == "qr" and not _mine(a):
        audit.record("qr.refused", actor="anonymous", client_id=a.client_id or None,
                     details={"approval": a.id, "reason": "other browser"})
    if a is None or not _mine(a):
        return _refused(_("无法完成扫码登录"), _("该二维码不是在本浏览器上生成的，或已失效。"), 403)
    rid = a.extra.get("rid")
    if a.state == "denied":
        return _refused(_("您已拒绝本次登录"),
                        _("您在手机App上拒绝了这次扫码登录。如需登录，请重新扫码。"), 403, rid)
    if a.expired:
        return _refused(_("二维码已过期"), _("请刷新二维码后重新扫码。"), 410, rid)
    used = approvals.consume(a.id)
    if used is None:
        return _refused(_("无法完成扫码登录"),
                        _("该二维码尚未在手机上确认，或已被使用。"), 409, rid)
    person = active_person(used.person_id) if used.person_id else None
    if person is None:
        return _refused(_("无法完成扫码登录"), _("该账号当前无法登录。"), 403, rid)
    amr = assurance.public_amr([*used.amr, "qr"])
    # The app's level is a ceiling: a QR sign-in proves the app session, nothing more.
    # A browser sign-in like any other: its channel is the asking client's rule.
    channel = policy.sign_in_channel(find_client(used.client_id) if used.client_id else None)
    sess = sso.start(person, amr=amr, acr=used.acr or "L1", channel=channel)
    audit.record("login.success", actor=person.id, subject=person.id,
                 client_id=used.client_id or None,
                 details={"amr": sess.amr, "acr": sess.acr, "sid": sess.sid,
                          "approval": used.id, "app_acr": used.acr})
    req = interaction.load(rid) if rid else None
    return redirect(req.resume_url() if req else url_for("authn.home"))


@bp.get("/s/<ticket>")
def scan_landing(ticket: str):
    """Opened by a phone's camera app rather than ours: explain, change nothing."""
    return render_template("qr_scan.html")


def register(app, server) -> None:
    app.register_blueprint(bp)
