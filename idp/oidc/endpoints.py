"""Revocation (RFC 7009) and introspection (RFC 7662) for both kinds of token."""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint as _Revocation
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _Introspection

from ..clients import find_client
from ..extensions import db
from ..models import RefreshToken
from ..revocation import revoke_grant
from . import resources
from .grants import ALL_METHODS, CONFIDENTIAL_METHODS
from .subject import subject_for
from .tokens import (
    AccessToken,
    InvalidAccessToken,
    decode_access_token,
    revoke_access_token,
)


def find_token(token_string: str, hint: str | None):
    """A refresh-token row or a verified access token; None when neither.

    The hint is only an optimisation (RFC 7009 §2.1): both kinds are tried."""
    order = ("refresh_token", "access_token") if hint == "refresh_token" else (
        "access_token", "refresh_token")
    for kind in order:
        if kind == "refresh_token":
            row = db.session.scalar(
                db.select(RefreshToken).where(
                    RefreshToken.token_hash == RefreshToken.digest(token_string))
            )
            if row is not None:
                return row
        elif token_string.count(".") == 2:
            try:
                return decode_access_token(token_string)
            except InvalidAccessToken:
                pass
    return None


class RevocationEndpoint(_Revocation):
    CLIENT_AUTH_METHODS = ALL_METHODS
    ENDPOINT_NAME = "revocation"

    def authenticate_token(self, request, client):
        # RFC 7009 §2.2: a token of another client is not revoked, but the answer is
        # the same 200 as for an unknown token, so clients cannot probe for tokens.
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is not None and not token.check_client(client):
            return None
        return token

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token, request):
        if isinstance(token, AccessToken):
            revoke_access_token(token.claims)
        else:
            # Revoking a refresh token ends the grant: its access tokens too (§2.1).
            revoke_grant(token.family_id, reason="refresh token revoked by client")


class IntrospectionEndpoint(_Introspection):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS
    ENDPOINT_NAME = "introspection"

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        # Any authenticated confidential client may introspect: resource servers
        # are confidential clients checking tokens issued to other clients. But a token
        # meant for one resource server (RFC 8707) is shown only to that server and to
        # its own client; to anyone else it is as good as unknown ("active": false).
        if isinstance(token, AccessToken):
            return resources.visible_to(token.claims, client)
        return True

    def introspect_token(self, token):
        if isinstance(token, AccessToken):
            c = token.claims
            out = {k: c[k] for k in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat",
                                     "jti", "auth_time", "acr", "cnf") if k in c}
            # RFC 9449 §6.2 / RFC 8705 §3.2: the resource server learns the binding.
            out["token_type"] = "DPoP" if (c.get("cnf") or {}).get("jkt") else "Bearer"
            return out
        client = find_client(token.client_id)
        return {
            "scope": token.scope,
            "client_id": token.client_id,
            "sub": subject_for(client, token.person_id) if client else token.person_id,
            "exp": int(token.expires_at),
            "iat": int(token.issued_at),
            "token_type": "refresh_token",
            **({"cnf": token.cnf} if token.cnf else {}),
        }
