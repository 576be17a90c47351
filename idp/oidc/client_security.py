"""Registration metadata of high-assurance relying parties, checked in one place for
``idp client add``, dynamic registration (:mod:`idp.oidc.registration`) and the console.

Keys (OIDC Registration, RFC 7591/9126/9101/9449/8705, JARM, CIBA names):
``profile`` ("fapi2"), ``jwks_uri``, ``require_pushed_authorization_requests``,
``require_signed_request_object``, ``dpop_bound_access_tokens``,
``tls_client_certificate_bound_access_tokens``, ``tls_client_auth_subject_dn``,
``authorization_signed_response_alg``, ``backchannel_token_delivery_mode`` ("poll" or
"ping") and ``backchannel_client_notification_endpoint``.
"""

from __future__ import annotations

from typing import Any

from ..crypto.keys import SIGNING_ALGS
from . import profile as profiles
from .safe_fetch import FetchError, check_url

BOOLEAN_KEYS = ("require_pushed_authorization_requests", "require_signed_request_object",
                "dpop_bound_access_tokens", "tls_client_certificate_bound_access_tokens")
TEXT_KEYS = ("profile", "jwks_uri", "tls_client_auth_subject_dn",
             "authorization_signed_response_alg", "backchannel_token_delivery_mode",
             "backchannel_client_notification_endpoint")
KEYS = BOOLEAN_KEYS + TEXT_KEYS
KEYED_METHODS = ("private_key_jwt", "self_signed_tls_client_auth")


class SecurityMetadataError(ValueError):
    pass


def _https(uri: Any, what: str, *, allow_private: bool) -> None:
    if not isinstance(uri, str) or len(uri) > 2048:
        raise SecurityMetadataError(f"{what} must be a URL")
    try:
        check_url(uri, allow_private=allow_private)
    except FetchError as exc:
        raise SecurityMetadataError(f"{what} {exc}") from None


def checked(security: dict[str, Any] | None, *, auth_method: str, grant_types: list[str],
            jwks: dict | None, allow_private: bool) -> dict[str, Any]:
    """The metadata to store (only what is set); SecurityMetadataError says what is wrong."""
    given = {k: v for k, v in (security or {}).items() if v not in (None, False, "")}
    unknown = set(given) - set(KEYS)
    if unknown:
        raise SecurityMetadataError(f"unknown metadata: {', '.join(sorted(unknown))}")
    for key in BOOLEAN_KEYS:
        if key in given and given[key] is not True:
            raise SecurityMetadataError(f"{key} must be true or false")
    for key in TEXT_KEYS:
        if key in given and not isinstance(given[key], str):
            raise SecurityMetadataError(f"{key} must be a string")
    problem = profiles.registration_problem(given.get("profile"), auth_method=auth_method,
                                            grant_types=grant_types,
                                            public=auth_method == "none")
    if problem:
        raise SecurityMetadataError(problem)
    if "jwks_uri" in given:
        if jwks:
            raise SecurityMetadataError("give jwks or jwks_uri, not both (OIDC Registration §2)")
        _https(given["jwks_uri"], "jwks_uri", allow_private=allow_private)
    if auth_method in KEYED_METHODS and not (jwks or given.get("jwks_uri")):
        raise SecurityMetadataError(f"{auth_method} needs the client's public keys "
                                    "(--jwks or --jwks-uri; jwks or jwks_uri when registering)")
    if given.get("require_signed_request_object") and not (jwks or given.get("jwks_uri")):
        raise SecurityMetadataError("signed request objects need the client's keys")
    if auth_method == "tls_client_auth" and not given.get("tls_client_auth_subject_dn"):
        raise SecurityMetadataError("tls_client_auth needs tls_client_auth_subject_dn")
    alg = given.get("authorization_signed_response_alg")
    if alg and alg not in SIGNING_ALGS:
        raise SecurityMetadataError(
            f"authorization_signed_response_alg must be one of {', '.join(SIGNING_ALGS)}")
    mode = given.get("backchannel_token_delivery_mode")
    if mode and mode not in ("poll", "ping"):
        raise SecurityMetadataError("backchannel_token_delivery_mode must be poll or ping")
    if mode == "ping":
        _https(given.get("backchannel_client_notification_endpoint"),
               "backchannel_client_notification_endpoint", allow_private=allow_private)
    elif "backchannel_client_notification_endpoint" in given:
        raise SecurityMetadataError(
            "backchannel_client_notification_endpoint is for backchannel_token_delivery_mode "
            "ping")
    return given
