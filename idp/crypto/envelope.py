"""Envelope encryption: per-purpose data keys, wrapped by the key-encryption key (KEK)
and stored in the database, so the KEK can be rotated while the provider runs.

Why this shape
--------------
Before this module every working key (personal-data encryption, key wrapping, blind
index, pairwise subjects) was *derived* from the KEK by HKDF-SM3 under its own label.
Rotating the KEK would then have meant re-encrypting every ciphertext and recomputing
every blind index of every person (and changing every pairwise ``sub`` — which relying
parties cannot survive). Instead:

* Each purpose has a **data key** kept in ``data_key``, sealed (SM4-GCM, the purpose as
  associated data) under a wrapping key derived from the KEK, with the id of that KEK.
* **Adoption** (``idp init``, first use of ``idp kek``): the data keys a database starts
  with are exactly the keys it was derived with so far — HKDF(KEK, label). They are
  stored wrapped; nothing else changes: every existing ciphertext still opens, every
  blind index and pairwise subject stays byte-for-byte the same, no person row is read
  or written. This is the migration path for existing data.
* **Rotation** only re-wraps the few data keys under the new KEK: its cost does not
  grow with the number of people. The PII is not re-encrypted (the data keys are the
  same), which is what the KEK's role calls for: the KEK guards keys, data keys guard
  data.
* While it runs, workers are configured with ``IDP_KEK`` (the new one) and
  ``IDP_KEK_PREVIOUS`` (the old one); a row is unwrapped with whichever KEK its
  ``kek_id`` names, so a worker that starts mid-rotation works too, and a running
  worker never notices (the data keys it unwrapped did not change). A worker given only
  the old KEK must not start after the rotation: it could not unwrap them — hence step 1
  before ``idp kek rotate``. If one does, it is refused by name, never silently: every
  request needing a key answers 503 and logs the fix (restart with the new IDP_KEK;
  :mod:`idp.availability`), and ``/readyz`` fails, until it is restarted so. When
  ``idp kek status`` says no row is left under the previous KEK, IDP_KEK_PREVIOUS is
  removed.

A database with no rows yet (before ``idp init`` on an upgraded install) is served
with the derived keys of the KEK its data was written under: IDP_KEK_PREVIOUS if set,
else IDP_KEK — the same keys adoption would store.
"""

from __future__ import annotations

import time

from sqlalchemy import Float, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .fieldcrypt import PURPOSES, KekRing, derive, derived, seal, unseal


class DataKey(db.Model):
    """One purpose's data key, sealed under the KEK named by ``kek_id``."""

    __tablename__ = "data_key"

    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    wrapped: Mapped[str] = mapped_column(Text)
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    wrapped_at: Mapped[float] = mapped_column(Float, default=time.time)


def _wrap(kek: bytes, purpose: str, key: bytes) -> str:
    return seal(derive(kek, "kek/wrap", 16), key.hex(), "data-key:" + purpose)


def _unwrap(kek: bytes, purpose: str, wrapped: str) -> bytes:
    return bytes.fromhex(unseal(derive(kek, "kek/wrap", 16), wrapped, "data-key:" + purpose))


class UnknownKek(RuntimeError):
    """A data key is wrapped under a KEK this process was not given (say, a worker still
    configured with the old IDP_KEK after ``idp kek rotate``). ``wrapped_under`` and
    ``current_id`` are the KEKs' public ids, never key material."""

    def __init__(self, message: str, *, wrapped_under: str = "", current_id: str = ""):
        super().__init__(message)
        self.wrapped_under, self.current_id = wrapped_under, current_id

    def fix(self) -> str:
        """What the operator does about it, in one line."""
        return (f"the data keys are wrapped under KEK {self.wrapped_under} but this process "
                f"has IDP_KEK {self.current_id}: restart it with the new key as IDP_KEK "
                "(and the old one as IDP_KEK_PREVIOUS while a rotation is under way); "
                "`idp kek status` shows which KEK the data keys are under")


def load(ring: KekRing) -> dict[str, bytes] | None:
    """The stored data keys, unwrapped; None when none are stored (or no table yet)."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        with db.engine.connect() as conn:
            rows = conn.execute(select(DataKey.purpose, DataKey.wrapped,
                                       DataKey.kek_id)).all()
    except (OperationalError, ProgrammingError):
        return None  # not migrated yet: the legacy derived keys serve
    if not rows:
        return None
    keys = {}
    for purpose, wrapped, ident in rows:
        kek = ring.by_id(ident)
        if kek is None:
            raise UnknownKek(f"data key {purpose!r} is wrapped under KEK {ident}, which is "
                             f"neither IDP_KEK ({ring.current_id}) nor IDP_KEK_PREVIOUS",
                             wrapped_under=ident, current_id=ring.current_id)
        keys[purpose] = _unwrap(kek, purpose, wrapped)
    return keys


def adopt(ring: KekRing) -> list[str]:
    """Store, wrapped under the current KEK, any data key not stored yet: the derived key
    of the KEK the data was written under (so nothing existing changes)."""
    have = set(db.session.scalars(select(DataKey.purpose)))
    base = derived(ring.legacy())
    made = []
    for purpose in PURPOSES:
        if purpose not in have:
            db.session.add(DataKey(purpose=purpose, kek_id=ring.current_id,
                                   wrapped=_wrap(ring.current, purpose, base[purpose])))
            made.append(purpose)
    db.session.commit()
    return made


def rotate(ring: KekRing) -> dict:
    """Re-wrap every data key still under another KEK with the current one; each row in
    its own short transaction (row-locked), so workers reading keys are never blocked
    for long and an interrupted rotation simply resumes."""
    started = time.monotonic()
    adopted = adopt(ring)
    rewrapped = 0
    for purpose in PURPOSES:
        row = db.session.execute(select(DataKey).where(DataKey.purpose == purpose)
                                 .with_for_update()).scalar_one()
        if row.kek_id != ring.current_id:
            kek = ring.by_id(row.kek_id)
            if kek is None:
                db.session.rollback()
                raise UnknownKek(f"data key {purpose!r} is wrapped under KEK {row.kek_id}; "
                                 "set it as IDP_KEK_PREVIOUS to rotate away from it",
                                 wrapped_under=row.kek_id, current_id=ring.current_id)
            row.wrapped = _wrap(ring.current, purpose, _unwrap(kek, purpose, row.wrapped))
            row.kek_id, row.wrapped_at = ring.current_id, time.time()
            rewrapped += 1
        db.session.commit()
    return {"rewrapped": rewrapped, "adopted": adopted, **status(ring),
            "seconds": round(time.monotonic() - started, 3)}


def status(ring: KekRing) -> dict:
    rows = db.session.execute(select(DataKey.purpose, DataKey.kek_id,
                                     DataKey.wrapped_at)).all()
    db.session.commit()
    under: dict[str, int] = {}
    for _p, ident, _at in rows:
        under[ident] = under.get(ident, 0) + 1
    pending = sum(n for ident, n in under.items() if ident != ring.current_id)
    if not rows:
        state = "not adopted (derived keys; run idp kek rotate or idp init)"
    elif pending:
        state = "rotating"
    else:
        state = "complete" + ("; IDP_KEK_PREVIOUS may now be removed" if ring.previous else "")
    return {"state": state, "kek_id": ring.current_id, "previous_kek_id": ring.previous_id,
            "data_keys": len(rows), "pending": pending, "by_kek": under,
            "last_wrapped_at": max((at for *_x, at in rows), default=None)}
