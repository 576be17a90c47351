"""The provider's own exceptions, defined once for every endpoint that raises them."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Unmet Authentication Requirements 1.0: the level asked for
    in ``acr_values`` cannot be reached by this person here."""

    error = "unmet_authentication_requirements"
    description = "The requested authentication level could not be reached."
