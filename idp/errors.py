"""The provider's own exceptions, defined once for every endpoint that raises them."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Unmet Authentication Requirements 1.0: the level asked for
    in ``acr_values`` cannot be reached by this person here."""

    error = "unmet_authentication_requirements"
    description = "The requested authentication level could not be reached."


class TemporarilyUnavailableError(OAuth2Error):
    """RFC 6749 §4.1.2.1: the server cannot handle the request now (here: this address
    has started too many sign-ins in a short time)."""

    error = "temporarily_unavailable"
    description = "Too many sign-in requests from this address; try again shortly."
