"""The Authlib authorization server, assembled."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc9207 import IssuerParameter

from ..clients import find_client
from . import grants, mtls, tokens
from .claims import SCOPES_SUPPORTED
from .endpoints import IntrospectionEndpoint, RevocationEndpoint
from .registration import ConfigurationEndpoint, RegistrationEndpoint
from .request_object import RequestObjects

# Authlib's OAuth2Error refuses to be built when its description has a character RFC 6749
# §4.1.2.1 forbids there (", \, controls, non-ASCII) and raises a plain ValueError with
# this text instead. Its own messages quote request parameters ("Redirect URI … is not
# supported"), so a `"` in redirect_uri would otherwise surface as a 500.
_REFUSED_TEXT = "Error description contains forbidden characters"
BAD_CHARACTERS = "The request has characters that are not allowed in its parameters."


def refuses_error_text(exc: BaseException) -> bool:
    """Whether ``exc`` is Authlib refusing an error description (see above)."""
    return type(exc) is ValueError and str(exc).startswith(_REFUSED_TEXT)


def _query_client(client_id: str):
    client = find_client(client_id)
    # A CAS or SAML relying party is never an OAuth client, whatever it sends.
    return client if client is None or client.protocol == "oidc" else None


class _Issuer(IssuerParameter):
    """RFC 9207: the ``iss`` parameter on authorization responses (mix-up defence)."""

    def get_issuer(self):
        return tokens.issuer()


class Server(AuthorizationServer):
    """Authlib's server, answering ``invalid_request`` where Authlib would crash on a
    request parameter it quotes in an error. Nothing is redirected: a parameter that
    cannot be quoted cannot be trusted as a redirect URI either."""

    def get_consent_grant(self, request=None, end_user=None):
        try:
            return super().get_consent_grant(request, end_user)
        except ValueError as exc:
            if not refuses_error_text(exc):
                raise
            raise InvalidRequestError(BAD_CHARACTERS) from None

    def create_authorization_response(self, request=None, grant_user=None, grant=None):
        try:
            return super().create_authorization_response(request, grant_user, grant)
        except ValueError as exc:
            return self._bad_characters(request, exc)

    def create_token_response(self, request=None):
        try:
            return super().create_token_response(request)
        except ValueError as exc:
            return self._bad_characters(request, exc)

    def create_endpoint_response(self, name, request=None):
        try:
            return super().create_endpoint_response(name, request)
        except ValueError as exc:
            return self._bad_characters(request, exc)

    def _bad_characters(self, request, exc: ValueError):
        if not refuses_error_text(exc):
            raise exc
        return self.handle_error_response(request, InvalidRequestError(BAD_CHARACTERS))


class _TokenGenerator(BearerTokenGenerator):
    """Authlib's token response; ``token_type`` is ``DPoP`` for a DPoP-bound token
    (RFC 9449 §5), so a client knows it must send proofs with it."""

    def generate(self, *args, **kwargs):
        token = super().generate(*args, **kwargs)
        token["token_type"] = tokens.token_type()
        return token


def build_server(app) -> AuthorizationServer:
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", SCOPES_SUPPORTED)
    server = Server()
    server.init_app(app, query_client=_query_client, save_token=tokens.save_token)
    server.register_token_generator(
        "default",
        _TokenGenerator(
            tokens.generate_access_token, tokens.generate_refresh_token, tokens.expires_in
        ),
    )
    server.register_client_auth_method("private_key_jwt", grants.PrivateKeyJWT())
    server.register_client_auth_method("tls_client_auth", mtls.TLSClientAuth())
    server.register_client_auth_method("self_signed_tls_client_auth",
                                       mtls.SelfSignedTLSClientAuth())
    server.register_grant(
        grants.AuthorizationCodeGrant, [grants.OpenIDCode(), grants.S256CodeChallenge()]
    )
    server.register_grant(grants.RefreshTokenGrant, [grants.OpenIDToken()])
    server.register_grant(grants.ClientCredentialsGrant)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(RegistrationEndpoint)
    server.register_endpoint(ConfigurationEndpoint)
    server.register_extension(_Issuer())
    server.register_extension(RequestObjects())
    return server
