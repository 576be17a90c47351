"""Resource indicators (RFC 8707): access tokens for one resource server, not for all.

The resource servers a client may ask tokens for are configured (RESOURCE_SERVERS:
entries ``client_id=https://api.example/``, the resource URI and the client id the
resource server introspects with). A ``resource`` parameter at ``/authorize`` (or
``/par``) and at ``/token`` names one or more of them; the access token's ``aud`` is then
exactly those URIs — such a token is not accepted by this provider's own APIs
(userinfo), and at introspection only the resource server it is meant for (and the
client it was issued to) sees it active. Without ``resource`` nothing changes: the
audience is this provider. A token request may narrow, never widen, what the
authorization (or the refresh token's grant) allowed. Unknown or malformed values are
``invalid_target``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import current_app, request


class InvalidTargetError(OAuth2Error):
    error = "invalid_target"
    status_code = 400


def parse_entry(entry: str) -> tuple[str, str]:
    """``client_id=URI`` -> (URI, client_id); ValueError if malformed."""
    client_id, sep, uri = str(entry).partition("=")
    parts = urlsplit(uri)
    if not sep or not client_id or parts.scheme != "https" or not parts.netloc \
            or parts.fragment:
        raise ValueError(entry)
    return uri, client_id


def servers() -> dict[str, str]:
    """Resource URI -> the client id of its resource server."""
    out = {}
    for entry in current_app.config.get("RESOURCE_SERVERS") or []:
        uri, client_id = parse_entry(entry)
        out[uri] = client_id
    return out


def requested(values: list | None, redirect_uri: str | None = None) -> list[str]:
    """The resource indicators asked for, each checked; [] for none."""
    values = [v for v in (values or []) if v not in (None, "")]
    known = servers()
    for value in values:
        if not isinstance(value, str) or value not in known:
            raise InvalidTargetError("The resource is not one this provider issues tokens for.",
                                     redirect_uri=redirect_uri)
    return sorted(set(values))


def from_request() -> list[str]:
    return requested(request.form.getlist("resource"))


def narrowed(asked: list[str], allowed: list[str] | None) -> list[str]:
    """What a token request gets: ``asked`` within ``allowed`` (None: no limit)."""
    if not asked:
        return list(allowed or [])
    if allowed and not set(asked) <= set(allowed):
        raise InvalidTargetError("The resource was not part of the authorization.")
    return asked


def set_audience(resources: list[str]) -> None:
    if resources:
        request.environ["idp.audience"] = resources if len(resources) > 1 else resources[0]


def audience():
    return request.environ.get("idp.audience")


def visible_to(claims: dict, client) -> bool:
    """Whether introspecting ``client`` may see this access token as active."""
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    known = servers()
    targets = [a for a in auds if a in known]
    if not targets:
        return True  # an ordinary token of this provider
    return client.client_id == claims.get("client_id") or any(
        known[a] == client.client_id for a in targets)
