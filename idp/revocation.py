"""Revoking a whole grant: every refresh token rotated from one authorization and every
access token issued from it.

It lives below the protocol code (it touches only the models and the short-lived store) so
that memberships, person merges and the token endpoints can all end a grant without the
domain modules importing ``oidc``."""

from __future__ import annotations

import time

from flask import current_app

from . import audit
from .extensions import db
from .models import RefreshToken
from .store import store


def revoke_grant(gid: str, reason: str = "revoked") -> int:
    """Revoke every refresh token of a grant and every access token issued from it."""
    now = time.time()
    rows = db.session.scalars(
        db.select(RefreshToken).where(
            RefreshToken.family_id == gid, RefreshToken.revoked_at.is_(None)
        )
    ).all()
    for row in rows:
        row.revoked_at = now
    db.session.commit()
    # Access tokens are self-contained JWTs: they are refused by jti until they would have
    # expired anyway.
    ttl = current_app.config["ACCESS_TOKEN_TTL"] + 60
    jtis = store().members(f"gjti:{gid}")
    for jti in jtis:
        store().set(f"revoked:{jti}", 1, ttl)
    client_id = rows[0].client_id if rows else None
    audit.record("grant.revoked", actor=client_id or "system", client_id=client_id,
                 subject=rows[0].person_id if rows else None,
                 details={"gid": gid, "reason": reason, "refresh_tokens": len(rows),
                          "access_tokens": len(jtis)})
    return len(rows) + len(jtis)


def person_grants_key(person_id: str) -> str:
    return f"pgid:{person_id}"


def person_client_grants_key(person_id: str, client_id: str) -> str:
    return f"pcgid:{person_id}:{client_id}"


def revoke_person_client(person_id: str, client_id: str, reason: str) -> int:
    """End every grant of a person at one client (the account page's "revoke"): its
    refresh tokens and the access tokens issued from them or from code grants without
    one. Returns how many were revoked."""
    families = set(db.session.scalars(db.select(RefreshToken.family_id).where(
        RefreshToken.person_id == person_id, RefreshToken.client_id == client_id,
        RefreshToken.revoked_at.is_(None))))
    families |= {g for g in store().members(person_client_grants_key(person_id, client_id))
                 if isinstance(g, str)}
    return sum(revoke_grant(gid, reason=reason) for gid in sorted(families))


def revoke_person(person_id: str, reason: str) -> int:
    """End every grant of a person: refresh tokens (all clients) and the access tokens
    issued from them or from code grants without one. Returns how many were revoked."""
    families = set(db.session.scalars(db.select(RefreshToken.family_id).where(
        RefreshToken.person_id == person_id, RefreshToken.revoked_at.is_(None))))
    families |= {g for g in store().members(person_grants_key(person_id)) if isinstance(g, str)}
    return sum(revoke_grant(gid, reason=reason) for gid in sorted(families))
