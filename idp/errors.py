"""The provider's own exceptions, defined once for every endpoint that raises them."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Unmet Authentication Requirements 1.0: the level asked for
    in ``acr_values`` cannot be reached by this person here."""

    error = "unmet_authentication_requirements"
    description = "The requested authentication level could not be reached."


class TemporarilyUnavailableError(OAuth2Error):
    """RFC 6749 §4.1.2.1 / §5.2 ``temporarily_unavailable``: a limit on this client or
    address, not a fault in the request; 429 with Retry-After where the answer is not a
    redirect."""

    error = "temporarily_unavailable"
    description = "Too many requests; try again shortly."
    status_code = 429

    def __init__(self, description: str | None = None, retry_after: float = 60, **kwargs):
        super().__init__(description, **kwargs)
        self.retry_after = max(1, int(retry_after))

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class SlowDownError(TemporarilyUnavailableError):
    """RFC 8628 §3.5 ``slow_down``: a device client asking too often."""

    error = "slow_down"
