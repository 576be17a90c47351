"""Pushed authorization requests (RFC 9126).

The client posts its authorization request to ``/par``, authenticated exactly as at
``/token``; we validate it as ``/authorize`` would (client, redirect URI, response type,
scope, PKCE; a request object by value is verified here), keep its parameters in the
short-lived store, and answer with a ``request_uri`` that names them. ``/authorize``
then takes only ``client_id`` and ``request_uri``: the parameters never pass through the
browser, so they can be neither read nor altered there. A ``request_uri`` is single
use, bound to its client and lives PAR_REQUEST_URI_TTL seconds.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import current_app, jsonify, request

from .. import audit
from . import dpop, grants, profile
from .par_store import keep
from .request_object import RequestObjects

_TTL_KEY = "PAR_REQUEST_URI_TTL"


def error_response(err: OAuth2Error):
    """A JSON error answer (token-endpoint style, RFC 6749 §5.2)."""
    body = dict(err.get_body())
    resp = jsonify(body)
    resp.status_code = 401 if body.get("error") == "invalid_client" else 400
    resp.headers["Cache-Control"] = "no-store"
    for name, value in err.get_headers():
        if name.lower() in ("www-authenticate", "dpop-nonce"):
            resp.headers[name] = value
    return resp


def push(server):
    """The PAR endpoint's response (201 with the request_uri, or a JSON error)."""
    oauth_req = server.create_oauth2_request(request)
    try:
        client = server.authenticate_client(oauth_req, grants.ALL_METHODS, endpoint="token")
        data = {k: v for k, v in request.form.items()}
        data.pop("client_assertion", None)
        data.pop("client_assertion_type", None)
        data.pop("client_secret", None)
        if "request_uri" in data:
            raise InvalidRequestError("'request_uri' must not be pushed (RFC 9126 section 2.1).")
        if data.get("client_id", client.client_id) != client.client_id:
            raise InvalidRequestError("'client_id' is not the authenticated client.")
        if "request" in data:
            params = {**RequestObjects().decode(data["request"], client),
                      "client_id": client.client_id}
        elif client.meta("require_signed_request_object"):
            raise InvalidRequestError("This client must use a signed request object.")
        else:
            params = {**data, "client_id": client.client_id}
            if len(request.form.getlist("resource")) > 1:
                params["resource"] = request.form.getlist("resource")  # repeatable
        proof = dpop.proof_from_request(nonce_required=dpop.nonce_required_at_as())
        if proof is not None:
            # RFC 9449 §10.1: the code will only be exchanged with a proof of this key.
            if params.get("dpop_jkt") not in (None, proof.jkt):
                raise InvalidRequestError("'dpop_jkt' does not match the DPoP proof's key.")
            params["dpop_jkt"] = proof.jkt
        params = {k: v for k, v in params.items() if v is not None}
        # Validate as /authorize would, before anything is stored.
        oauth_req.payload = BasicOAuth2Payload(params)
        oauth_req.idp_pushed = True
        grant = server.get_authorization_grant(oauth_req)
        grant.validate_authorization_request()
        if profile.is_fapi(client) and not params.get("code_challenge"):
            raise InvalidRequestError("FAPI 2.0 requires PKCE ('code_challenge', S256).")
    except OAuth2Error as err:
        return error_response(err)
    ttl = int(current_app.config[_TTL_KEY])
    ref = keep(client.client_id, params, ttl)
    audit.record("oidc.par", actor=client.client_id, client_id=client.client_id,
                 details={"signed": "request" in data, "dpop": proof is not None})
    resp = jsonify(request_uri=ref, expires_in=ttl)
    resp.status_code = 201
    resp.headers["Cache-Control"] = "no-store"
    return resp
