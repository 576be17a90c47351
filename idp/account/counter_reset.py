"""A password reset vouched for by a clerk at a service-hall counter, for a person whose
phone is lost and who cannot (or will not) use a face match.

The clerk holds the ID card and checks it against its holder face to face — the same
in-person document check the CIBA ``in_person_check=document`` path trusts, by the same
kind of client: a hall client registered with ``--in-person-checks``, authenticated at
the backchannel endpoint's rules (:mod:`idp.channels.ciba`'s own client check, staff id
``acting_party``, and its per-client limit on look-ups that name nobody). The counter
application then asks ``POST /recover/counter`` for a one-time reset code, prints it on
a slip, and the person types it with a new password at ``/recover/code`` — at the
counter's kiosk or at home, within :data:`TTL`. Only an HMAC of the code is stored; a
few wrong tries kill it; a new code replaces the previous one.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import UnauthorizedClientError
from flask import current_app, jsonify

from .. import audit
from ..channels import ciba
from ..store import store
from . import slip_codes

TTL = 1800
MAX_TRIES = 5
LENGTH = 10  # 50 bits



def _key(person_id: str) -> str:
    return f"pwreset:{slip_codes.mac('pwreset-person', person_id)[:32]}"



def issue():
    """``POST /recover/counter`` (client-authenticated hall application):
    ``login_hint`` (the ID number on the card), ``acting_party`` (the clerk's staff id).
    Answers ``{"reset_code", "expires_in"}``; errors as the backchannel endpoint's."""
    srv = current_app.extensions["idp.oauth"]
    req = srv.create_oauth2_request(None)
    try:
        client = ciba._authenticate(req)
        if not ciba._may_check_in_person(client):
            raise UnauthorizedClientError("The client is not permitted to vouch for "
                                          "in-person document checks.")
        clerk = ciba._acting_party(ciba._param(req, "acting_party"))
        slot = ciba._take_hint_slot(client)
        person = ciba._find_person(ciba._param(req, "login_hint") or "")
        ciba._count_hit(slot)
    except OAuth2Error as err:
        return ciba._error(req, err)
    code = slip_codes.new_code(LENGTH)
    store().set(_key(person.id), {"mac": slip_codes.mac("pwreset", person.id, code), "clerk": clerk,
                                  "client_id": client.client_id}, TTL)
    store().delete(f"{_key(person.id)}:tries")
    audit.record("password.reset_code_issued", actor=clerk, subject=person.id,
                 client_id=client.client_id,
                 details={"act": {"sub": clerk, "client_id": client.client_id},
                          "expires_in": TTL})
    resp = jsonify(reset_code=f"{code[:5]}-{code[5:]}", expires_in=TTL)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def redeem(person_id: str, typed: str) -> dict | None:
    """The issuing record if ``typed`` is the person's live reset code (used up at
    once), else None; too many wrong tries kill the code."""
    key = _key(person_id)
    record = store().get(key)
    if not isinstance(record, dict):
        return None
    return slip_codes.take(key, record, typed, "pwreset", person_id, length=LENGTH, ttl=TTL,
                           max_tries=MAX_TRIES)
