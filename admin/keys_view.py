"""Signing keys as an operator sees them: per algorithm, each key's state and when it
leaves the JWKS; rotation as ``idp keys rotate`` does it."""

from __future__ import annotations

from dataclasses import dataclass

from idp import audit
from idp.crypto.keys import SIGNING_ALGS, generate, retire_expired, verification_window
from idp.extensions import db
from idp.models import SigningKey

# Stored states → what they mean to an operator: "published" signs nothing any more
# but stays in the JWKS until every token it signed has expired.
STATES = {"active": "active", "published": "retiring", "retired": "retired"}


@dataclass(frozen=True)
class KeyRow:
    kid: str
    alg: str
    state: str
    created_at: float
    retired_at: float | None
    leaves_jwks_at: float | None


def listing() -> list[KeyRow]:
    window = verification_window()
    rows = db.session.scalars(db.select(SigningKey).order_by(SigningKey.alg,
                                                             SigningKey.created_at.desc()))
    return [KeyRow(kid=r.kid, alg=r.alg, state=STATES.get(r.status, r.status),
                   created_at=r.created_at, retired_at=r.retired_at,
                   leaves_jwks_at=(r.retired_at + window) if r.status == "published"
                   and r.retired_at else None) for r in rows]


def rotate(alg: str, *, actor: str) -> tuple[KeyRow, list[str]]:
    """A new active key for ``alg`` (the previous one retires); ValueError for an
    unknown algorithm."""
    if alg not in SIGNING_ALGS:
        raise ValueError(f"algorithm must be one of {', '.join(SIGNING_ALGS)}")
    row = generate(alg)
    db.session.commit()
    retired = retire_expired()
    from idp.oidc.tokens import keyring

    keyring().invalidate()
    audit.record("keys.rotate", actor=actor, details={"alg": alg, "kid": row.kid,
                                                      "retired": retired})
    return next(k for k in listing() if k.kid == row.kid), retired
