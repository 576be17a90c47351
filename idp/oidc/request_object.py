"""Signed request objects (RFC 9101) and pushed requests (RFC 9126) at ``/authorize``.

Authlib's :class:`~authlib.oauth2.rfc9101.JWTAuthenticationRequest` replaces an
authorization request's parameters by those of its request object before any grant
sees them. This subclass adds what RFC 9101 §4 and §10 require that Authlib leaves to
the server: ``iss`` is the client, ``aud`` is us, ``exp`` is present, near and not
passed, ``nbf`` is passed; only asymmetric algorithms (never ``none``) with the client's
registered keys (inline or ``jwks_uri``). And it resolves ``request_uri`` values that
this provider issued at its PAR endpoint (:mod:`idp.oidc.par`), once.

After resolution the request says how it came (``request.idp_via``), which
:mod:`idp.oidc.interaction` records on the pending request, so that the browser's
return from the login page resumes *this* request without a second use of its
``request_uri`` and without an expired request object being checked again.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc9101 import JWTAuthenticationRequest
from authlib.oauth2.rfc9101.errors import InvalidRequestObjectError, InvalidRequestUriError
from flask import current_app, request
from joserfc import jws

from ..interaction import load
from . import par_store, profile
from .client_keys import ClientKeysError, key_set
from .tokens import issuer

# Asymmetric only: a shared-secret HMAC would need the client secret kept in the clear,
# and "none" is no signature at all (RFC 9101 §10.1, FAPI 2.0 §5.4).
REQUEST_OBJECT_ALGS = ["ES256", "PS256", "RS256", "SM2SM3"]
_JWT_CLAIMS = ("iss", "aud", "exp", "iat", "nbf", "jti")
_LEEWAY = 30


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_claims(claims: dict[str, Any], client_id: str) -> str | None:
    """Why these request-object claims are not acceptable, or None."""
    now = time.time()
    if claims.get("iss") != client_id:
        return "The request object's 'iss' must be the client_id."
    aud = claims.get("aud")
    if issuer() not in (aud if isinstance(aud, list) else [aud]):
        return "The request object's 'aud' must be this provider's issuer identifier."
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if not _number(exp):
        return "The request object must have a numeric 'exp'."
    if exp < now - _LEEWAY:
        return "The request object has expired."
    if nbf is not None and (not _number(nbf) or nbf > now + _LEEWAY):
        return "The request object is not yet valid ('nbf')."
    most = float(current_app.config["REQUEST_OBJECT_MAX_LIFETIME"])
    if exp - now > most + _LEEWAY or (_number(iat) and exp - iat > most):
        return f"The request object may live at most {int(most)} seconds."
    return None


def _params(claims: dict[str, Any]) -> dict[str, Any]:
    """The authorization parameters a request object carries (its JWT claims aside)."""
    out = {k: v for k, v in claims.items() if k not in _JWT_CLAIMS}
    if isinstance(out.get("max_age"), int) and not isinstance(out["max_age"], bool):
        out["max_age"] = str(out["max_age"])
    return out


class RequestObjects(JWTAuthenticationRequest):
    def __init__(self):
        super().__init__(support_request=True, support_request_uri=True)

    # -- Authlib's extension points ------------------------------------------------
    def get_request_object_signing_algorithms(self, client):
        return REQUEST_OBJECT_ALGS

    def resolve_client_public_key(self, client):
        try:
            return key_set(client, request.environ.get("idp.request_kid"))
        except ClientKeysError as exc:
            raise InvalidRequestObjectError(description=str(exc)) from None

    def validate_request_uri(self, request_uri, client):
        return False  # only our own PAR references, resolved before Authlib sees them

    def get_server_metadata(self):
        return {"require_signed_request_object": False}

    def get_client_require_signed_request_object(self, client):
        return bool(client.meta("require_signed_request_object"))

    # -- the hook ------------------------------------------------------------------
    def parse_authorization_request(self, authorization_server, request):
        if getattr(request, "idp_pushed", False):
            return  # the PAR endpoint validating what is pushed: already resolved
        data = request.payload.data
        client = authorization_server.query_client(data.get("client_id"))
        if client is None:
            raise InvalidClientError(status_code=400,
                                     description="The client does not exist on this server.")
        if self._resume(request, client):
            return
        via = None
        if "request_uri" in data:
            if "request" in data:
                raise InvalidRequestError(
                    "The 'request' and 'request_uri' parameters are mutually exclusive.")
            pushed = par_store.take(data["request_uri"], client.client_id)
            if pushed is None:
                raise InvalidRequestUriError(
                    description="The request_uri is unknown, expired or already used.")
            request.payload = BasicOAuth2Payload(pushed)
            request.idp_via = ("request_uri", data["request_uri"])
            return
        if "request" in data:
            via = ("request", data["request"])
            request.payload = BasicOAuth2Payload(
                {**self.decode(data["request"], client), "client_id": client.client_id})
        elif self.get_client_require_signed_request_object(client):
            raise InvalidRequestError(
                "Authorization requests for this client must use signed request objects.")
        if profile.requires_par(client):
            raise InvalidRequestError(
                "This client must push its authorization requests first (RFC 9126).")
        request.idp_via = via

    def _resume(self, request, client) -> bool:
        """Back from the login page with ``_rid``: the stored request, as first resolved."""
        data = request.payload.data
        kind = "request_uri" if "request_uri" in data else "request" if "request" in data \
            else None
        stored = load(data.get("_rid")) if kind else None
        if stored is None or stored.protocol != "oidc" or stored.client_id != client.client_id \
                or stored.params.get(kind) != data[kind]:
            return False
        params = {k: v for k, v in stored.params.items() if k not in ("request", "request_uri")}
        request.payload = BasicOAuth2Payload({**params, "_rid": data["_rid"]})
        request.idp_via = (kind, data[kind])
        return True

    def decode(self, raw: Any, client) -> dict[str, Any]:
        """The verified parameters of request object ``raw`` from ``client`` (also used
        by the PAR endpoint for a request object pushed by value)."""
        if not isinstance(raw, str) or raw.count(".") != 2:
            raise InvalidRequestObjectError(description="The request object is not a JWS.")
        try:
            header = jws.extract_compact(raw.encode()).protected
        except (ValueError, TypeError, Exception):  # noqa: BLE001 - any malformed token
            raise InvalidRequestObjectError(description="The request object is not a JWS.") \
                from None
        if header.get("alg") not in REQUEST_OBJECT_ALGS:
            raise InvalidRequestObjectError(
                description="The request object must be signed with one of "
                            + ", ".join(REQUEST_OBJECT_ALGS) + ".")
        kid = header.get("kid")
        request.environ["idp.request_kid"] = kid if isinstance(kid, str) else None
        obj = self._decode_request_object(_Carrier(client.client_id), client, raw)
        problem = check_claims(obj.claims, client.client_id)
        if problem:
            raise InvalidRequestObjectError(description=problem)
        return _params(obj.claims)


class _Carrier:
    """What Authlib's decoder reads from the request: the outer client_id and state."""

    def __init__(self, client_id: str):
        self.payload = BasicOAuth2Payload({"client_id": client_id})
