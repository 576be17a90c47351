"""Dynamic client registration (RFC 7591) and its management (RFC 7592): how a
government system applies to use the platform (接入申请 → 审核 → 上线 → 下线).

1. An operator issues an initial access token (``idp client initial-token``): without
   one nobody can register, so the endpoint is not an open door.
2. The system posts its metadata to ``/connect/register`` with that token. The
   registration is checked exactly as ``idp client add`` checks one
   (:func:`idp.clients.register_client`) and stored with status ``pending``: a pending
   client can sign nobody in and get no token (``find_client`` answers only for active
   clients). The answer carries the
   ``client_id``, a secret where the method needs one, and a registration access token
   for ``/connect/register/<client_id>``.
3. An administrator approves (:mod:`idp.onboarding`, the console, ``idp client
   approve``). What widens access is granted only explicitly there: sensitive scopes
   (``idcard``) asked for, and a channel other than web/app.
4. With the registration access token the system reads, updates and deletes its
   registration (and rotates its secret at ``/connect/register/<client_id>/secret``).

Every step is audited. The initial access token is single use and is spent only by a
registration that succeeded; tokens are kept as their SHA-256 only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7591 import ClientMetadataClaims, ClientRegistrationEndpoint
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError
from authlib.oauth2.rfc7592 import ClientConfigurationEndpoint
from flask import current_app, request

from .. import audit, client_admin
from ..clients import ClientError, register_client
from ..extensions import db
from ..models import Client
from ..policy import GRANT_TYPES
from ..store import store
from .claims import SCOPES_SUPPORTED, SENSITIVE_SCOPES
from .client_security import KEYS as SECURITY_KEYS
from .tokens import issuer

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt",
                "tls_client_auth", "self_signed_tls_client_auth", "none"]
# Channels a registration may have without an administrator granting it: the person's
# own browser or phone. Counters, kiosks and hotlines act for people in person.
SELF_SERVICE_CHANNELS = ("web", "app")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- initial access tokens ------------------------------------------------------------

def issue_initial_token(*, actor: str, note: str = "", ttl: int | None = None) -> dict:
    """A new initial access token (shown once). ``note`` says whom it is for."""
    ttl = int(ttl or current_app.config["REGISTRATION_INITIAL_TOKEN_TTL"])
    token = secrets.token_urlsafe(32)
    store().set(f"regiat:{_digest(token)}", {"note": note[:200], "by": actor,
                                            "at": time.time()}, ttl)
    audit.record("client.initial_token_issued", actor=actor,
                 details={"note": note[:200], "ttl": ttl})
    return {"initial_access_token": token, "expires_in": ttl, "note": note}


def _bearer() -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() or None if auth[:7].lower() == "bearer " else None


class InvalidTokenError(OAuth2Error):
    """RFC 7591 §3 / RFC 6750 §3.1: a missing or bad initial (or registration) access
    token is answered 401 ``invalid_token``."""

    error = "invalid_token"
    status_code = 401

    def get_headers(self):
        return [*super().get_headers(),
                ("WWW-Authenticate", f'Bearer error="invalid_token", '
                                     f'error_description="{self.description}"')]


class _InitialToken:
    def __init__(self, digest: str, record: dict):
        self.digest, self.record = digest, record


# -- registration (RFC 7591) ----------------------------------------------------------

def server_metadata() -> dict[str, Any]:
    return {"scopes_supported": SCOPES_SUPPORTED, "response_types_supported": ["code"],
            "grant_types_supported": sorted(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": AUTH_METHODS}


def _text(data: dict, key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        raise InvalidClientMetadataError(f"'{key}' must be a string.")
    return value


def _list(data: dict, key: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadataError(f"'{key}' must be an array of strings.")
    return value


def _safe(text: str) -> str:
    # OAuth error descriptions: printable ASCII without quote or backslash (RFC 6749).
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:300]


def _registration_info(client_id: str) -> dict[str, str]:
    """A fresh registration access token for ``client_id`` (the old one stops working)."""
    token = secrets.token_urlsafe(32)
    row = client_admin.get(client_id)
    meta = dict(row.client_metadata or {})
    meta["registration_access_token_hash"] = _digest(token)
    row.client_metadata = meta
    db.session.commit()
    return {"registration_client_uri": f"{issuer()}/connect/register/{client_id}",
            "registration_access_token": token}


class RegistrationEndpoint(ClientRegistrationEndpoint):
    claims_classes = [ClientMetadataClaims]

    def __init__(self, server=None):
        super().__init__(server, claims_classes=[ClientMetadataClaims])

    def get_server_metadata(self):
        return server_metadata()

    def authenticate_token(self, req):
        token = _bearer()
        if not token:
            raise InvalidTokenError("An initial access token issued by an operator is required.")
        digest = _digest(token)
        record = store().get(f"regiat:{digest}")
        if not isinstance(record, dict):
            raise InvalidTokenError("The initial access token is unknown, used or expired.")
        return _InitialToken(digest, record)

    def generate_client_id(self, req):
        return "dcr-" + secrets.token_hex(12)

    def generate_client_secret(self, req):
        method = req.payload.data.get("token_endpoint_auth_method", "client_secret_basic")
        return secrets.token_urlsafe(32) if str(method).startswith("client_secret") else None

    def save_client(self, client_info, client_metadata, req):
        data = req.payload.data
        method = client_metadata.get("token_endpoint_auth_method", "client_secret_basic")
        channel = _text(data, "channel", "web")
        scope = _text(data, "scope", "") or ""
        sensitive = sorted(set(scope.split()) & SENSITIVE_SCOPES)
        security = {k: data[k] for k in SECURITY_KEYS if k in data and k != "jwks_uri"}
        if client_metadata.get("jwks_uri"):
            security["jwks_uri"] = client_metadata["jwks_uri"]
        try:
            # The channel is the one asked only once approved: until then, web.
            row = register_client(
                client_id=client_info["client_id"],
                name=_text(data, "client_name") or client_info["client_id"],
                secret=client_info.get("client_secret"), auth_method=method,
                redirect_uris=client_metadata.get("redirect_uris") or [],
                grant_types=client_metadata.get("grant_types") or [],
                post_logout_redirect_uris=_list(data, "post_logout_redirect_uris"),
                backchannel_logout_uri=_text(data, "backchannel_logout_uri"),
                channel=channel if channel in SELF_SERVICE_CHANNELS else "web",
                jwks=client_metadata.get("jwks"),
                id_token_alg=_text(data, "id_token_signed_response_alg"),
                userinfo_alg=_text(data, "userinfo_signed_response_alg"),
                subject_type=_text(data, "subject_type", "public"),
                sector_identifier_uri=_text(data, "sector_identifier_uri"),
                security=security)
        except ClientError as exc:
            db.session.rollback()
            raise InvalidClientMetadataError(_safe(str(exc))) from None
        # Spend the initial access token only now, and only once (a race loses here).
        if store().take(f"regiat:{req.credential.digest}") is None:
            db.session.delete(row)
            db.session.commit()
            raise InvalidTokenError("The initial access token was already used.")
        meta = dict(row.client_metadata or {})
        meta["registration"] = {"requested_sensitive_scopes": sensitive,
                                "requested_channel": channel,
                                "initial_token_note": req.credential.record.get("note", ""),
                                "registered_at": int(time.time())}
        row.client_metadata = meta
        row.status = "pending"
        db.session.commit()
        client_admin.forget_client(row.client_id)
        audit.record("client.registered", actor=row.client_id, client_id=row.client_id,
                     details={"status": "pending", "auth_method": method,
                              "redirect_uris": row.redirect_uris,
                              "requested_sensitive_scopes": sensitive,
                              "requested_channel": channel,
                              "profile": meta.get("profile")})
        return row

    def generate_client_registration_info(self, client, req):
        return {**_registration_info(client.client_id), "registration_status": "pending"}


# -- management (RFC 7592) ------------------------------------------------------------

class _RegistrationToken:
    def __init__(self, client: Client):
        self.client = client

    def check_client(self, client) -> bool:
        return client.client_id == self.client.client_id


def describe(client: Client) -> dict[str, Any]:
    """The registration as RFC 7591 §3.2.1 returns it (nothing secret)."""
    meta = client.client_metadata or {}
    keep = ("redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method",
            "post_logout_redirect_uris", "backchannel_logout_uri", "jwks", "jwks_uri",
            "subject_type", "sector_identifier_uri", "id_token_signed_response_alg",
            "userinfo_signed_response_alg", *SECURITY_KEYS)
    out = {k: meta[k] for k in keep if k in meta}
    out.update(client_id=client.client_id, client_name=client.name,
               client_id_issued_at=int(client.created_at or 0), client_secret_expires_at=0,
               scope=" ".join(["openid", "profile", "phone", "offline_access",
                               *client.allowed_sensitive_scopes]),
               registration_status=client.status)
    return out


class ConfigurationEndpoint(ClientConfigurationEndpoint):
    """``/connect/register/<client_id>``, authenticated by the registration access token."""

    def __init__(self, server=None):
        super().__init__(server, claims_classes=[ClientMetadataClaims])

    def get_server_metadata(self):
        return server_metadata()

    def authenticate_token(self, req):
        token = _bearer()
        client = client_admin.get(request.view_args.get("client_id") or "")
        want = (client.meta("registration_access_token_hash") if client else None) or ""
        if not token or not want or not hmac.compare_digest(want, _digest(token)):
            raise InvalidTokenError("A valid registration access token is required.")
        return _RegistrationToken(client)

    def authenticate_client(self, req):
        return req.credential.client

    def revoke_access_token(self, req, token):
        pass  # the token names one client; with the client gone it names nothing

    def check_permission(self, client, req):
        return True

    def introspect_client(self, client):
        return describe(client)

    def generate_client_registration_info(self, client, req):
        # RFC 7592 §3: the registration access token is not rotated on read (our choice;
        # it is rotated with the secret).
        return {"registration_client_uri": f"{issuer()}/connect/register/{client.client_id}"}

    def delete_client(self, client, req):
        client_admin.delete(client.client_id, actor=client.client_id,
                            reason="deleted by the client (RFC 7592)")

    def update_client(self, client, client_metadata, req):
        data = req.payload.data
        changes: dict[str, Any] = {}
        for ours, theirs in (("redirect_uris", "redirect_uris"), ("grant_types", "grant_types"),
                             ("post_logout_redirect_uris", "post_logout_redirect_uris"),
                             ("jwks", "jwks"), ("jwks_uri", "jwks_uri"), ("name", "client_name"),
                             ("backchannel_logout_uri", "backchannel_logout_uri")):
            if theirs in data:
                changes[ours] = data[theirs]
        try:
            client_admin.update(client.client_id, changes, actor=client.client_id)
        except ClientError as exc:
            db.session.rollback()
            raise InvalidClientMetadataError(_safe(str(exc))) from None
        return client_admin.get(client.client_id)


def rotate_secret(client_id: str) -> dict[str, Any]:
    """``POST /connect/register/<client_id>/secret``: a new secret and a new registration
    access token."""
    client = client_admin.get(client_id)
    want = (client.meta("registration_access_token_hash") if client else None) or ""
    token = _bearer()
    if not token or not want or not hmac.compare_digest(want, _digest(token)):
        raise InvalidTokenError("A valid registration access token is required.")
    try:
        secret, until = client_admin.rotate_secret(client_id, actor=client_id, grace_seconds=0)
    except ClientError as exc:
        raise InvalidRequestError(_safe(str(exc))) from None
    return {"client_id": client_id, "client_secret": secret, "client_secret_expires_at": 0,
            **_registration_info(client_id)}
