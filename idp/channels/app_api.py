"""The signed-in mobile app as the person's authenticator.

The app is an ordinary public client (authorization code + PKCE, rotating refresh
tokens). With its own access token it calls this small JSON API to see what waits for
the person's approval (a QR code scanned on a website or kiosk, a service-hall or
hotline request), to approve or deny it, and to claim a QR code it has just scanned.

Only tokens issued to a client of channel ``app`` are accepted: a website's token
for the same person must not be able to approve sign-ins on the person's behalf.
The API uses no cookies, so it needs no CSRF token; errors are RFC 6750 JSON.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, request

from .. import audit
from ..authn import assurance
from ..clients import find_client
from ..devices import coarse_network
from ..extensions import csrf
from ..oidc import bearer
from . import approvals
from . import no_store_json as _json

bp = Blueprint("app_api", __name__, url_prefix="/api/app")
csrf.exempt(bp)

QR_PATH = "/qr/s/"


def _error(error: str, description: str, status: int):
    return _json({"error": error, "error_description": description}, status)


def app_token_required(view):
    """Admit only a live access token of a channel-``app`` client for an active person;
    ``g.idp_app`` then holds (person, claims)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            at = bearer.access_token()
            client = find_client(at.claims.get("client_id"))
            if client is None or client.channel != "app":
                raise bearer.BearerError("insufficient_scope",
                                         "Only the mobile app's own tokens are accepted here.",
                                         403)
            person = bearer.active_person(at)
        except bearer.BearerError as err:
            return err.response()
        g.idp_app = (person, at.claims)
        return view(*args, **kwargs)

    return wrapper


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.get("/requests")
@app_token_required
def list_requests():
    person, _claims = g.idp_app
    return _json({"requests": [a.public() for a in approvals.pending_for(person.id)]})


@bp.post("/requests/<aid>")
@app_token_required
def decide(aid: str):
    person, claims = g.idp_app
    decision = _body().get("decision")
    if decision not in ("approve", "deny"):
        return _error("invalid_request", "'decision' must be 'approve' or 'deny'.", 400)
    a = approvals.get(aid)
    # Someone else's request is as unknown as a made-up id: its existence is not news.
    if a is None or a.person_id != person.id:
        return _error("not_found", "No such request for this person.", 404)
    if a.state != "pending":
        return _error("already_decided", "The request was already decided.", 409)
    if a.expired:
        return _error("expired", "The request has expired.", 410)
    amr = [v for v in claims.get("amr") or [] if isinstance(v, str)]
    acr = claims.get("acr")
    approve = decision == "approve"
    if approve and not assurance.meets(acr, a.acr_asked):
        # RFC 9470: the app's own sign-in is weaker than the request needs; it must step
        # up (sign in again more strongly) first. The request stays open; deny still works.
        return _error("insufficient_user_authentication",
                      f"This request needs {a.acr_asked}; the app session holds {acr}.", 403)
    done = approvals.decide(aid, person.id, approve, amr=amr, acr=acr)
    if done is None:  # lost a race with another tap, or expired just now
        return _error("already_decided", "The request was already decided.", 409)
    audit.record("approval.decided", actor=person.id, subject=person.id,
                 client_id=done.client_id or None,
                 details={"approval": done.id, "kind": done.kind, "decision": done.state,
                          "acr": acr, "amr": amr, "app_client": claims.get("client_id")})
    return _json({"request": done.public()})


def ticket_of(value: Any) -> str | None:
    """The ticket in what the app scanned: the bare ticket or this issuer's QR URL.
    Another issuer's URL is not ours to act on."""
    if not isinstance(value, str) or not value or len(value) > 512:
        return None
    value = value.strip()
    prefix = current_app.config["ISSUER"] + QR_PATH
    if "/" in value:
        if not value.startswith(prefix):
            return None
        value = value[len(prefix):].split("?")[0].split("#")[0]
    return value or None


@bp.post("/qr/scan")
@app_token_required
def scan():
    person, claims = g.idp_app
    ticket = ticket_of(_body().get("ticket"))
    a = approvals.get(ticket)
    if a is None or a.kind != "qr":
        return _error("unknown_ticket", "This QR code is not known here.", 404)
    if a.expired:
        return _error("expired_ticket", "This QR code has expired; ask for a new one.", 410)
    # Scanned from another network than the browser that showed the code: perhaps a
    # code someone else's browser made, sent or shown to the person (QR login hijacking).
    here = coarse_network(request.remote_addr)
    different = bool(a.extra.get("network")) and (here is None or here[0] != a.extra["network"])
    bound = approvals.bind(a.id, person.id, extra={"different_network": different}) \
        if a.person_id is None else None
    if bound is None:
        # The first scan wins; a second scan (a photo of the code, or a race) learns
        # nothing about who made the first.
        return _error("already_scanned", "This QR code was already scanned.", 409)
    client = find_client(bound.client_id) if bound.client_id else None
    audit.record("qr.scanned", actor=person.id, subject=person.id,
                 client_id=bound.client_id or None,
                 details={"approval": bound.id, "app_client": claims.get("client_id"),
                          "different_network": different,
                          "ticket_network": a.extra.get("network_shown"),
                          "app_network": here[1] if here else None})
    return _json({"request": {**bound.public(),
                              "channel": client.channel if client is not None else "web"}})


def register(app, server) -> None:
    app.register_blueprint(bp)
