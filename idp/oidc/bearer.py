"""This provider as a resource server (RFC 6750): the APIs that take its own access
tokens — userinfo and the mobile app's API — read and check them here, so both give
the same answers: a bare challenge without a token, ``invalid_token`` for a bad,
expired or revoked one, ``insufficient_scope`` when it may not be used there."""

from __future__ import annotations

from flask import jsonify, request

from ..extensions import db
from ..models import Person
from . import dpop, mtls
from .tokens import (
    AccessToken,
    InvalidAccessToken,
    decode_access_token,
    person_id_of,
    resource_audience,
)


class BearerError(Exception):
    def __init__(self, error: str | None, description: str, status: int = 401,
                 scheme: str = "Bearer"):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status
        self.scheme = scheme

    def response(self):
        resp = jsonify(error=self.error or "invalid_request",
                       error_description=self.description)
        resp.status_code = self.status
        resp.headers["Cache-Control"] = "no-store"
        # RFC 6750 §3.1: a request without credentials gets a bare challenge.
        resp.headers["WWW-Authenticate"] = (
            f'{self.scheme} error="{self.error}", error_description="{self.description}"'
            if self.error else self.scheme)
        if self.scheme == "DPoP":
            resp.headers["WWW-Authenticate"] += f', algs="{" ".join(dpop.DPOP_ALGS)}"'
        if self.error == "use_dpop_nonce":
            resp.headers["DPoP-Nonce"] = dpop.current_nonce()  # RFC 9449 §9
        return resp


def access_token(*, form_allowed: bool = False) -> AccessToken:
    """The request's live access token for this provider's APIs, or BearerError.
    ``form_allowed``: also the ``access_token`` form field of a POST (RFC 6750 §2.2)."""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    scheme = scheme.lower()
    token = value.strip() if scheme in ("bearer", "dpop") else None
    if token is None and form_allowed and request.method == "POST":
        scheme, token = "bearer", request.form.get("access_token")
    if not token:
        raise BearerError(None, "Missing bearer token.")
    # Errors answer in the scheme the request used (RFC 9449 §7.1).
    challenge = "DPoP" if scheme == "dpop" else "Bearer"
    try:
        at = decode_access_token(token, audience=resource_audience())
    except InvalidAccessToken:
        raise BearerError("invalid_token", "The access token is invalid.",
                          scheme=challenge) from None
    if at.is_expired() or at.is_revoked():
        raise BearerError("invalid_token", "The access token expired or was revoked.",
                          scheme=challenge)
    check_binding(at, token, scheme)
    return at


def check_binding(at: AccessToken, token: str, scheme: str) -> None:
    """A sender-constrained token only with its key's proof or its certificate (RFC 9449
    §7, RFC 8705 §3). Unbound tokens cost nothing more here: no store, no database."""
    cnf = at.claims.get("cnf") or {}
    jkt = cnf.get("jkt")
    if jkt:
        if scheme != "dpop":
            # §7.2: a DPoP-bound token presented as a bearer token is refused.
            raise BearerError("invalid_token", "This access token is DPoP-bound: use the DPoP "
                              "scheme with a proof.", scheme="DPoP")
        try:
            proof = dpop.proof_from_request(nonce_required=dpop.nonce_required_at_rs(),
                                            access_token=token)
        except dpop.UseDPoPNonce as exc:
            raise BearerError("use_dpop_nonce", exc.description, scheme="DPoP") from None
        except dpop.InvalidDPoPProof as exc:
            raise BearerError("invalid_dpop_proof", exc.description, scheme="DPoP") from None
        if proof is None:
            raise BearerError("invalid_dpop_proof", "A DPoP proof is required.", scheme="DPoP")
        if proof.jkt != jkt:
            raise BearerError("invalid_dpop_proof",
                              "The DPoP proof's key is not the token's key.", scheme="DPoP")
    elif scheme == "dpop":
        raise BearerError("invalid_token", "This access token is not DPoP-bound.",
                          scheme="DPoP")
    x5t = cnf.get("x5t#S256")
    if x5t and mtls.presented_thumbprint() != x5t:
        raise BearerError("invalid_token",
                          "This access token is bound to another TLS client certificate.")


def active_person(at: AccessToken) -> Person:
    """The person the token is about, if still active (not a client's own token)."""
    pid = person_id_of(at.claims)
    person = db.session.get(Person, pid) if pid and pid != at.claims.get("client_id") else None
    if person is None or person.status != "active":
        raise BearerError("invalid_token", "The subject is no longer active.")
    return person
