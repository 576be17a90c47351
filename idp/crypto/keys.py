"""Token-signing keys: generated on first start, kept in the database, published in the JWKS.

Every worker reads keys from the database and caches them for a few seconds, so a
rotation made by one worker (or by ``idp keys rotate``) reaches all of them quickly.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from flask import current_app
from joserfc.jwk import ECKey, Key, KeySet, RSAKey, import_key

from ..extensions import db
from ..models import SigningKey
from .jose_sm2 import SM2Key  # importing registers SM2SM3 and SM2 JWKs with joserfc

# One generator per JWS algorithm we sign with.
GENERATORS: dict[str, Callable[[], Key]] = {
    "ES256": lambda: ECKey.generate_key("P-256", private=True),
    "RS256": lambda: RSAKey.generate_key(2048, private=True),
    "SM2SM3": lambda: SM2Key.generate_key(private=True),
}
SIGNING_ALGS = tuple(GENERATORS)

_CACHE_SECONDS = 10.0


def fieldcrypto():
    return current_app.extensions["idp.fieldcrypto"]


class KeyRing:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._signing: dict[str, tuple[str, Key]] = {}
        self._imported: dict[str, Key] = {}  # kid -> key; a kid's key never changes
        self._public: KeySet = KeySet([])
        self._jwks: dict = {"keys": []}

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    def _refresh(self) -> None:
        if time.monotonic() - self._loaded_at < _CACHE_SECONDS:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < _CACHE_SECONDS:
                return
            rows = db.session.execute(
                db.select(SigningKey.kid, SigningKey.alg, SigningKey.status,
                          SigningKey.retired_at)
                .where(SigningKey.status.in_(("active", "published")))
                .order_by(SigningKey.created_at)
            ).all()
            cutoff = time.time() - verification_window()
            rows = [r for r in rows if r.status == "active" or (r.retired_at or 0) > cutoff]
            # Unwrapping and importing a key (RSA: ~45 ms) happens once per kid and
            # worker, not at every refresh.
            missing = [r.kid for r in rows if r.kid not in self._imported]
            if missing:
                for kid, wrapped in db.session.execute(
                        db.select(SigningKey.kid, SigningKey.private_jwk)
                        .where(SigningKey.kid.in_(missing))):
                    self._imported[kid] = import_key(
                        json.loads(fieldcrypto().unwrap_key(wrapped, kid)))
            signing: dict[str, tuple[str, Key]] = {}
            public = []
            for row in rows:
                key = self._imported[row.kid]
                if row.status == "active":
                    signing[row.alg] = (row.kid, key)  # newest active key of each alg wins
                public.append(self._public_jwk(row, key))
            self._signing = signing
            self._jwks = {"keys": public}
            self._public = KeySet([import_key(k) for k in public])
            self._loaded_at = time.monotonic()

    @staticmethod
    def _public_jwk(row, key: Key) -> dict:
        data = key.as_dict(private=False)
        data.update({"kid": row.kid, "alg": row.alg, "use": "sig"})
        return data

    def signing_key(self, alg: str) -> tuple[str, Key]:
        self._refresh()
        try:
            return self._signing[alg]
        except KeyError:
            raise LookupError(
                f"no active signing key for {alg}; run 'idp keys rotate --alg {alg}'"
            ) from None

    def jwks(self) -> dict:
        self._refresh()
        return self._jwks

    def public_keys(self) -> KeySet:
        self._refresh()
        return self._public

    def algorithms(self) -> list[str]:
        self._refresh()
        return sorted(self._signing)


def verification_window() -> float:
    """How long a key must stay published after it stops signing: the longest a token
    it signed can live, plus clock skew."""
    cfg = current_app.config
    return max(cfg["ACCESS_TOKEN_TTL"], cfg["ID_TOKEN_TTL"], 120) + 300


def retire_expired() -> list[str]:
    """Retire published keys whose every token has expired; they leave the JWKS."""
    cutoff = time.time() - verification_window()
    rows = db.session.scalars(db.select(SigningKey).where(
        SigningKey.status == "published", SigningKey.retired_at < cutoff)).all()
    for row in rows:
        row.status = "retired"
    db.session.commit()
    return [r.kid for r in rows]


def generate(alg: str) -> SigningKey:
    """Make a new active key for ``alg``. Older active keys of that alg stay published."""
    if alg not in GENERATORS:
        raise ValueError(f"unsupported algorithm {alg!r}; choose one of {', '.join(GENERATORS)}")
    key = GENERATORS[alg]()
    kid = f"{alg.lower()}-{key.thumbprint()[:16]}"
    for old in db.session.scalars(
        db.select(SigningKey).where(SigningKey.alg == alg, SigningKey.status == "active")
    ):
        old.status = "published"
        old.retired_at = time.time()
    # Private keys are never in clear at rest: SM4-GCM under the KEK, bound to the kid.
    wrapped = fieldcrypto().wrap_key(json.dumps(key.as_dict(private=True)), kid)
    row = SigningKey(kid=kid, alg=alg, private_jwk=wrapped)
    db.session.add(row)
    return row


def ensure_keys(algs: list[str]) -> list[SigningKey]:
    """Generate an active key for every algorithm that has none (first start)."""
    have = set(
        db.session.scalars(db.select(SigningKey.alg).where(SigningKey.status == "active")).all()
    )
    made = [generate(alg) for alg in algs if alg not in have]
    if made:
        db.session.commit()
    return made
