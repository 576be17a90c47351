"""Operating relying parties after registration: list, show, update, disable, enable,
delete, rotate the secret (the old one valid for a grace period), and per-client figures.

The admin console, its REST API and the ``idp client`` commands all call these, so a
change made one way reads the same the others. Every change is audited with the
operator as actor. Validation of new metadata reuses the checks of
:func:`idp.clients.register_client`, so an update can never store what a registration
would have refused.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from . import audit
from .clients import (
    ClientError,
    _check_addresses,
    _check_algorithms,
    _check_grants,
    _check_keys,
    _check_scopes,
    _check_security,
    _check_uri,
    forget_client,
)
from .extensions import db
from .models import Client, Consent, RefreshToken, hash_client_secret
from .revocation import revoke_grant

STATUSES = ("active", "disabled", "pending")
CHANNELS = ("web", "app", "kiosk", "hall", "hotline")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
# The longest an old secret may stay valid after a rotation: long enough to redeploy,
# short enough that a leaked secret does not outlive its replacement by much.
MAX_GRACE_SECONDS = 30 * 86400
# The console's own client is managed by the provider itself (admin.auth.ensure_client).
PROTECTED = frozenset({"admin-console"})

__all__ = ["AUTH_METHODS", "CHANNELS", "MAX_GRACE_SECONDS", "STATUSES", "ClientError",
           "ClientStats", "KINDS", "ProfileError", "delete", "describe", "get", "listing",
           "rotate_secret", "set_status", "stats", "update"]


def get(client_id: str) -> Client | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 128:
        return None
    return db.session.scalar(db.select(Client).where(Client.client_id == client_id))


def _require(client_id: str) -> Client:
    client = get(client_id)
    if client is None:
        raise LookupError(f"no client {client_id!r}")
    return client


KINDS = ("relying_party", "admin_api")


def _kind_filter(query, kind: str | None, owner: str | None):
    """``admin_api``: the admin API's own clients (those an administrator made, with
    ``admin_owner`` in their metadata); ``relying_party``: every other client."""
    made_by = Client.client_metadata["admin_owner"].as_string()
    if kind == "admin_api":
        query = query.where(made_by.is_not(None))
    elif kind == "relying_party":
        query = query.where(made_by.is_(None))
    if owner:
        query = query.where(made_by == owner)
    return query


def listing(*, status: str | None = None, channel: str | None = None, q: str | None = None,
            kind: str | None = None, owner: str | None = None,
            page: int = 1, per_page: int = 50) -> tuple[list[Client], int]:
    """One page of clients (newest first) and how many match in all; ``kind`` and
    ``owner`` narrow it to relying parties or admin API clients (of one administrator)."""
    query = _kind_filter(db.select(Client), kind, owner)
    if status:
        query = query.where(Client.status == status)
    if channel:
        query = query.where(Client.channel == channel)
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(Client.client_id.like(like, escape="\\")
                            | Client.name.like(like, escape="\\"))
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery())) or 0
    rows = list(db.session.scalars(query.order_by(Client.created_at.desc(), Client.id.desc())
                                   .offset((page - 1) * per_page).limit(per_page)))
    return rows, total


def describe(client: Client) -> dict[str, Any]:
    """What an operator sees of a client: its registration, never its secret."""
    return {
        "client_id": client.client_id, "name": client.name, "status": client.status,
        "channel": client.channel, "first_party": bool(client.first_party),
        "protocol": client.meta("protocol", "oidc"),
        "auth_method": client.token_endpoint_auth_method,
        "has_secret": bool(client.client_secret_hash),
        "previous_secret_valid_until": (client.secret_previous_until
                                        if client.secret_previous_hash
                                        and (client.secret_previous_until or 0) > time.time()
                                        else None),
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "grant_types": list(client.grant_types),
        "sensitive_scopes": list(client.allowed_sensitive_scopes or []),
        "id_token_alg": client.id_token_signed_response_alg,
        "jwks": client.jwks, "jwks_uri": client.meta("jwks_uri"),
        "profile": client.meta("profile"),
        "admin_scopes": list(client.meta("admin_scopes", [])),
        "admin_owner": client.meta("admin_owner"),
        "created_at": client.created_at,
    }


# -- changes -------------------------------------------------------------------------

EDITABLE = ("name", "redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri",
            "grant_types", "sensitive_scopes", "channel", "id_token_alg", "jwks", "jwks_uri",
            "first_party", "profile")


class ProfileError(ClientError):
    """The registration cannot have the security profile asked for; ``reason`` is the
    refusal of :func:`idp.oidc.profile.registration_problem` (through
    :func:`idp.clients._check_security`, as for ``idp client add --profile``)."""

    def __init__(self, profile: str, reason: str):
        super().__init__(f"cannot use profile {profile}: {reason}")
        self.profile, self.reason = profile, reason


def _check_profile(client: Client, new: dict[str, Any]) -> None:
    """A security profile is checked with the client's other high-assurance metadata
    exactly as a registration asking for it would be."""
    from .oidc.client_security import KEYS

    if not new["profile"]:
        return
    security = {k: v for k, v in (client.client_metadata or {}).items() if k in KEYS}
    security.update(profile=new["profile"], jwks_uri=new["jwks_uri"])
    try:
        _check_security(security, new["auth_method"], list(new["grant_types"]), new["jwks"])
    except ClientError as exc:
        raise ProfileError(str(new["profile"]), str(exc)) from None


def _validated(client: Client, changes: dict[str, Any]) -> dict[str, Any]:
    """The client's registration with ``changes`` applied, checked as a registration."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ClientError(f"cannot change: {', '.join(sorted(unknown))}")
    now = describe(client)
    new = {**now, **{k: v for k, v in changes.items()}}
    if not isinstance(new["name"], str) or not new["name"].strip() or len(new["name"]) > 255:
        raise ClientError("name must be 1–255 characters")
    if new["channel"] not in CHANNELS:
        raise ClientError(f"channel must be one of {', '.join(CHANNELS)}")
    if new["jwks_uri"]:
        _check_uri(new["jwks_uri"], "JWKS URI")
        if not new["jwks_uri"].startswith("https://"):
            raise ClientError("JWKS URI must be https")
        if new["jwks"]:
            raise ClientError("give jwks or jwks_uri, not both (OIDC Registration §2)")
    _check_grants(new["grant_types"], redirect_uris=new["redirect_uris"],
                  auth_method=new["auth_method"], channel=new["channel"],
                  in_person_checks=bool(client.meta("in_person_checks")))
    _check_addresses(new["redirect_uris"], new["post_logout_redirect_uris"],
                     new["backchannel_logout_uri"])
    _check_algorithms(new["id_token_alg"], None)
    _check_scopes(new["sensitive_scopes"], None, None)
    if not new["jwks_uri"]:
        _check_keys(new["auth_method"], new["jwks"])
    _check_profile(client, new)
    return new


def update(client_id: str, changes: dict[str, Any], *, actor: str) -> Client:
    """Change registration metadata (``EDITABLE`` keys); ClientError says what is wrong."""
    client = _require(client_id)
    if client.client_id in PROTECTED:
        raise ClientError("the admin console's own client is managed by the provider")
    new = _validated(client, changes)
    meta = dict(client.client_metadata or {})
    meta.update({"redirect_uris": new["redirect_uris"], "grant_types": new["grant_types"],
                 "response_types": ["code"] if "authorization_code" in new["grant_types"]
                 else [],
                 "post_logout_redirect_uris": new["post_logout_redirect_uris"]})
    for key, value in (("backchannel_logout_uri", new["backchannel_logout_uri"]),
                       ("id_token_signed_response_alg", new["id_token_alg"]),
                       ("jwks", new["jwks"]), ("jwks_uri", new["jwks_uri"]),
                       ("profile", new["profile"])):
        if value:
            meta[key] = value
        else:
            meta.pop(key, None)
    meta["backchannel_logout_session_required"] = bool(new["backchannel_logout_uri"]) or None
    if meta["backchannel_logout_session_required"] is None:
        meta.pop("backchannel_logout_session_required")
    before_profile = client.meta("profile")
    client.client_metadata = meta
    client.name = new["name"].strip()
    client.channel = new["channel"]
    client.first_party = bool(new["first_party"])
    client.allowed_sensitive_scopes = list(new["sensitive_scopes"])
    db.session.commit()
    forget_client(client.client_id)
    details: dict[str, Any] = {"changed": sorted(changes)}
    if before_profile != new["profile"]:
        details["profile"] = {"from": before_profile, "to": new["profile"]}
    audit.record("client.updated", actor=actor, client_id=client.client_id,
                 details=details)
    return client


def _revoke_client_grants(client_id: str, reason: str) -> int:
    families = set(db.session.scalars(db.select(RefreshToken.family_id).where(
        RefreshToken.client_id == client_id, RefreshToken.revoked_at.is_(None))))
    return sum(revoke_grant(gid, reason=reason) for gid in sorted(families))


def set_status(client_id: str, status: str, *, actor: str, reason: str = "") -> Client:
    """``disabled``: the client can no longer sign anyone in or get tokens, and its
    refresh tokens are revoked (re-enabling does not bring them back); ``active``: it
    can again. Approving a ``pending`` registration is ``active`` too."""
    if status not in STATUSES:
        raise ClientError(f"status must be one of {', '.join(STATUSES)}")
    client = _require(client_id)
    if client.client_id in PROTECTED:
        raise ClientError("the admin console's own client cannot be disabled")
    before = client.status
    if before == status:
        return client
    client.status = status
    db.session.commit()
    forget_client(client.client_id)
    revoked = _revoke_client_grants(client.client_id, "client_disabled") \
        if status == "disabled" else 0
    audit.record("client.status_changed", actor=actor, client_id=client.client_id,
                 details={"from": before, "to": status, "reason": reason[:500],
                          "revoked": revoked})
    return client


def delete(client_id: str, *, actor: str, reason: str = "") -> dict[str, int]:
    """Remove a client for good: its grants are revoked and consents forgotten."""
    client = _require(client_id)
    if client.client_id in PROTECTED:
        raise ClientError("the admin console's own client cannot be deleted")
    cid = client.client_id
    revoked = _revoke_client_grants(cid, "client_deleted")
    consents = db.session.execute(db.delete(Consent).where(Consent.client_id == cid)).rowcount
    db.session.delete(client)
    db.session.commit()
    forget_client(cid)
    audit.record("client.deleted", actor=actor, client_id=cid,
                 details={"revoked": revoked, "consents": consents, "reason": reason[:500]})
    return {"revoked": revoked, "consents": consents}


def rotate_secret(client_id: str, *, actor: str, grace_seconds: int = 86400
                  ) -> tuple[str, float | None]:
    """A new secret (returned once, stored hashed); the previous one keeps working for
    ``grace_seconds`` (0: stops at once). Returns (secret, until)."""
    client = _require(client_id)
    if client.is_public or client.token_endpoint_auth_method == "private_key_jwt":
        raise ClientError(f"this client authenticates with {client.token_endpoint_auth_method}"
                          ", not a secret")
    if not isinstance(grace_seconds, int) or not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ClientError(f"grace period must be 0–{MAX_GRACE_SECONDS} seconds")
    secret = secrets.token_urlsafe(32)
    until = time.time() + grace_seconds if grace_seconds and client.client_secret_hash else None
    client.secret_previous_hash = client.client_secret_hash if until else None
    client.secret_previous_until = until
    client.client_secret_hash = hash_client_secret(secret)
    db.session.commit()
    forget_client(client.client_id)
    audit.record("client.secret_rotated", actor=actor, client_id=client.client_id,
                 details={"grace_seconds": grace_seconds})
    return secret, until


# -- figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientStats:
    active_grants: int
    people_with_consent: int
    sign_ins_24h: int
    tokens_24h: int
    failures_24h: int


def stats(client_id: str, *, now: float | None = None) -> ClientStats:
    """From what the provider already records: live refresh-token families, consents,
    and the last day's audit entries for this client."""
    from .audit.models import AuditEvent

    now = time.time() if now is None else now
    active = db.session.scalar(db.select(db.func.count(db.distinct(RefreshToken.family_id)))
                               .where(RefreshToken.client_id == client_id,
                                      RefreshToken.revoked_at.is_(None),
                                      RefreshToken.rotated_at.is_(None),
                                      RefreshToken.expires_at > now)) or 0
    consents = db.session.scalar(db.select(db.func.count()).select_from(Consent)
                                 .where(Consent.client_id == client_id)) or 0
    rows = dict(db.session.execute(
        db.select(AuditEvent.event, db.func.count()).where(
            AuditEvent.client_id == client_id, AuditEvent.ts >= now - 86400)
        .group_by(AuditEvent.event)).all())
    return ClientStats(
        active_grants=active, people_with_consent=consents,
        sign_ins_24h=sum(n for e, n in rows.items() if e in ("login.success", "authorize")),
        tokens_24h=sum(n for e, n in rows.items() if e.startswith("token.")
                       and "fail" not in e),
        failures_24h=sum(n for e, n in rows.items() if "fail" in e or "denied" in e))
