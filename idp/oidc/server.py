"""The Authlib authorization server, assembled."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc9207 import IssuerParameter

from ..clients import find_client
from . import grants, tokens
from .claims import SCOPES_SUPPORTED
from .endpoints import IntrospectionEndpoint, RevocationEndpoint


def _query_client(client_id: str):
    return find_client(client_id)


class _Issuer(IssuerParameter):
    """RFC 9207: the ``iss`` parameter on authorization responses (mix-up defence)."""

    def get_issuer(self):
        return tokens.issuer()


def build_server(app) -> AuthorizationServer:
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", SCOPES_SUPPORTED)
    server = AuthorizationServer()
    server.init_app(app, query_client=_query_client, save_token=tokens.save_token)
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            tokens.generate_access_token, tokens.generate_refresh_token, tokens.expires_in
        ),
    )
    server.register_client_auth_method("private_key_jwt", grants.PrivateKeyJWT())
    server.register_grant(
        grants.AuthorizationCodeGrant, [grants.OpenIDCode(), grants.S256CodeChallenge()]
    )
    server.register_grant(grants.RefreshTokenGrant, [grants.OpenIDToken()])
    server.register_grant(grants.ClientCredentialsGrant)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_extension(_Issuer())
    return server
