"""This provider as a resource server (RFC 6750): the APIs that take its own access
tokens — userinfo and the mobile app's API — read and check them here, so both give
the same answers: a bare challenge without a token, ``invalid_token`` for a bad,
expired or revoked one, ``insufficient_scope`` when it may not be used there."""

from __future__ import annotations

from flask import jsonify, request

from ..extensions import db
from ..models import Person
from .tokens import (
    AccessToken,
    InvalidAccessToken,
    decode_access_token,
    person_id_of,
    resource_audience,
)


class BearerError(Exception):
    def __init__(self, error: str | None, description: str, status: int = 401):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self):
        resp = jsonify(error=self.error or "invalid_request",
                       error_description=self.description)
        resp.status_code = self.status
        resp.headers["Cache-Control"] = "no-store"
        # RFC 6750 §3.1: a request without credentials gets a bare challenge.
        resp.headers["WWW-Authenticate"] = (
            f'Bearer error="{self.error}", error_description="{self.description}"'
            if self.error else "Bearer")
        return resp


def access_token(*, form_allowed: bool = False) -> AccessToken:
    """The request's live access token for this provider's APIs, or BearerError.
    ``form_allowed``: also the ``access_token`` form field of a POST (RFC 6750 §2.2)."""
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    if token is None and form_allowed and request.method == "POST":
        token = request.form.get("access_token")
    if not token:
        raise BearerError(None, "Missing bearer token.")
    try:
        at = decode_access_token(token, audience=resource_audience())
    except InvalidAccessToken:
        raise BearerError("invalid_token", "The access token is invalid.") from None
    if at.is_expired() or at.is_revoked():
        raise BearerError("invalid_token", "The access token expired or was revoked.")
    return at


def active_person(at: AccessToken) -> Person:
    """The person the token is about, if still active (not a client's own token)."""
    pid = person_id_of(at.claims)
    person = db.session.get(Person, pid) if pid and pid != at.claims.get("client_id") else None
    if person is None or person.status != "active":
        raise BearerError("invalid_token", "The subject is no longer active.")
    return person
