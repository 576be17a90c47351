"""Per-client security profiles: what a FAPI 2.0 client (``--profile fapi2``) must do.

FAPI 2.0 Security Profile §5.3: pushed authorization requests only, PKCE with S256,
client authentication by ``private_key_jwt`` or mutual TLS, sender-constrained access
tokens (DPoP or mTLS), authorization codes valid at most 60 seconds, ``iss`` in every
authorization response (always on here). The same rules can be asked for one at a time
with the standard registration metadata (``require_pushed_authorization_requests``,
``dpop_bound_access_tokens``, ``tls_client_certificate_bound_access_tokens``); the
server-wide switch REQUIRE_PUSHED_AUTHORIZATION_REQUESTS covers every client.
"""

from __future__ import annotations

from flask import current_app

FAPI2 = "fapi2"
PROFILES = (FAPI2,)
MTLS_METHODS = ["tls_client_auth", "self_signed_tls_client_auth"]
FAPI_AUTH_METHODS = ["private_key_jwt", *MTLS_METHODS]


def is_fapi(client) -> bool:
    return client is not None and client.meta("profile") == FAPI2


def requires_par(client) -> bool:
    return bool(current_app.config["REQUIRE_PUSHED_AUTHORIZATION_REQUESTS"]
                or is_fapi(client) or client.meta("require_pushed_authorization_requests"))


def requires_dpop(client) -> bool:
    """Every access token of this client must be DPoP-bound (RFC 9449 §5.2)."""
    return bool(client.meta("dpop_bound_access_tokens"))


def requires_mtls_binding(client) -> bool:
    return bool(client.meta("tls_client_certificate_bound_access_tokens"))


def requires_sender_constraint(client) -> bool:
    """DPoP or a certificate: FAPI 2.0 accepts either."""
    return is_fapi(client) or requires_dpop(client) or requires_mtls_binding(client)


def code_ttl(client) -> int:
    ttl = int(current_app.config["AUTHORIZATION_CODE_TTL"])
    if is_fapi(client):
        return min(ttl, int(current_app.config["FAPI_AUTHORIZATION_CODE_TTL"]))
    return ttl


def registration_problem(profile: str | None, *, auth_method: str, grant_types: list[str],
                         public: bool) -> str | None:
    """Why a registration cannot have this profile, or None."""
    if not profile:
        return None
    if profile not in PROFILES:
        return f"profile must be one of: {', '.join(PROFILES)}"
    if public or auth_method not in FAPI_AUTH_METHODS:
        return ("FAPI 2.0 clients authenticate with private_key_jwt, tls_client_auth or "
                "self_signed_tls_client_auth")
    if set(grant_types) - {"authorization_code", "refresh_token", "client_credentials"}:
        return "FAPI 2.0 clients use the authorization code (and refresh) grants only"
    return None
