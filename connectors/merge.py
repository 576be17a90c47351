"""Merging two persons who turn out to be one citizen, and undoing it.

``merge_persons(survivor, absorbed, …)`` moves the absorbed person's legacy links,
memberships, TOTP and WebAuthn credentials to the survivor, unions consents, keeps the
survivor's password (the absorbed one's hash is kept in the record), and marks the
absorbed person ``merged``. One transaction: all of it or none. ``MergeRecord.moved``
lists every row that moved, by id, and every consent as it was, so
``undo_merge(record)`` puts back exactly the state before.

What does not come back on undo: the absorbed person's grants. Their tokens name a
subject that stops existing, so they are revoked (``idp.revocation.revoke_grant``)
after the merge commits; a revoked token is never made valid again — the person signs
in anew. Access tokens of grants without a refresh token cannot be found by person,
but every resource check (userinfo, refresh) already refuses a person not ``active``.

Audit histories are not rewritten (the log is append-only): entries stay under the
absorbed id, and the record links the two ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from idp import audit
from idp.extensions import db
from idp.identity import InvalidIdNumber, mask_text, parse_person_id
from idp.models import (
    Consent,
    LegacyAccount,
    Membership,
    MergeRecord,
    Person,
    RefreshToken,
    TotpCredential,
    WebAuthnCredential,
)
from idp.revocation import revoke_grant

# Tables whose rows belong to a person through ``person_id`` and move as they are.
MOVED_TABLES = {
    "legacy_account": LegacyAccount,
    "membership": Membership,
    "totp_credential": TotpCredential,
    "webauthn_credential": WebAuthnCredential,
}


class MergeError(ValueError):
    """A merge or undo refused; the message says why (English, for operators)."""


#: The largest row id the databases store (a 32-bit INTEGER on PostgreSQL). An id typed
#: beyond it names no row; asking the database would fail with an overflow instead.
ROW_ID_MAX = 2**31 - 1


def row_id(value: int) -> bool:
    """Whether ``value`` can be the id of a stored row at all."""
    return isinstance(value, int) and 1 <= value <= ROW_ID_MAX


@dataclass
class Counts:
    legacy_account: int = 0
    membership: int = 0
    totp_credential: int = 0
    webauthn_credential: int = 0
    consent: int = 0
    revoked_grants: int = 0


def normalised_number(person: Person) -> str:
    """The person's ID number in its 18-character form (legacy 15-digit numbers
    converted), or as stored when it does not parse."""
    raw = person.id_number
    try:
        return parse_person_id(raw).number
    except InvalidIdNumber:
        return raw.strip().upper()


def same_citizen(a: Person, b: Person) -> bool:
    return normalised_number(a) == normalised_number(b)


def merged_into(person_id: str) -> str | None:
    """The person this one was merged into (following later merges), or None."""
    seen = {person_id}
    current = person_id
    while True:
        survivor = db.session.scalar(db.select(MergeRecord.survivor_id).where(
            MergeRecord.absorbed_id == current, MergeRecord.undone_at.is_(None))
            .order_by(MergeRecord.id.desc()).limit(1))
        if survivor is None or survivor in seen:
            return None if current == person_id else current
        seen.add(survivor)
        current = survivor


def _check(survivor: Person | None, absorbed: Person | None, survivor_id: str,
           absorbed_id: str, force: bool, reason: str) -> bool:
    """Refuse what must not be merged; whether the merge is forced (numbers differ)."""
    if survivor_id == absorbed_id:
        raise MergeError("cannot merge a person into itself")
    if survivor is None:
        raise MergeError(f"no person {survivor_id}")
    if absorbed is None:
        raise MergeError(f"no person {absorbed_id}")
    if survivor.status != "active":
        raise MergeError(f"the surviving person is {survivor.status}; merge into an active one")
    if absorbed.status == "merged":
        raise MergeError("this person was already merged into another")
    if same_citizen(survivor, absorbed):
        return False
    if not force:
        raise MergeError("the two ID numbers differ; an administrator may force the "
                         "merge with a reason")
    if not reason.strip():
        raise MergeError("a forced merge needs a reason")
    return True


def _consent_row(c: Consent | None) -> dict | None:
    return None if c is None else {"client_id": c.client_id, "scopes": c.scopes,
                                   "granted_at": c.granted_at}


def merge_persons(survivor_id: str, absorbed_id: str, *, actor: str, reason: str = "",
                  force: bool = False) -> MergeRecord:
    """Move everything of ``absorbed_id`` onto ``survivor_id`` (see module docstring)."""
    return _committed(lambda: prepare_merge(survivor_id, absorbed_id, actor=actor,
                                            reason=reason, force=force), finish_merge)


def _committed(prepare: Callable[[], MergeRecord],
               finish: Callable[[MergeRecord], None]) -> MergeRecord:
    """``prepare()``'s writes committed (or all rolled back), then ``finish`` them."""
    try:
        record = prepare()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    finish(record)
    return record


def prepare_merge(survivor_id: str, absorbed_id: str, *, actor: str, reason: str = "",
                  force: bool = False) -> MergeRecord:
    """The merge's writes, flushed but not committed, for a caller that commits them
    with its own (the review queue); then ``finish_merge``."""
    survivor = db.session.get(Person, survivor_id, with_for_update=True)
    absorbed = db.session.get(Person, absorbed_id, with_for_update=True)
    forced = _check(survivor, absorbed, survivor_id, absorbed_id, force, reason)
    moved: dict = {}
    for table, model in MOVED_TABLES.items():
        ids = list(db.session.scalars(db.select(model.id).where(
            model.person_id == absorbed_id).order_by(model.id)))
        if ids:
            db.session.execute(db.update(model).where(model.id.in_(ids))
                               .values(person_id=survivor_id))
        moved[table] = ids
    theirs = list(db.session.scalars(db.select(Consent).where(
        Consent.person_id == absorbed_id).order_by(Consent.client_id)))
    before: dict[str, dict | None] = {}
    for c in theirs:
        mine = db.session.get(Consent, (survivor_id, c.client_id))
        before[c.client_id] = _consent_row(mine)
        if mine is None:
            mine = Consent(person_id=survivor_id, client_id=c.client_id, scopes="",
                           granted_at=c.granted_at)
            db.session.add(mine)
        mine.scopes = " ".join(sorted(set(mine.scopes.split()) | set(c.scopes.split())))
    moved["consent"] = {"absorbed": [_consent_row(c) for c in theirs],
                        "survivor_before": before}
    for c in theirs:
        db.session.delete(c)
    moved["revoked_grants"] = sorted(set(db.session.scalars(
        db.select(RefreshToken.family_id).where(RefreshToken.person_id == absorbed_id,
                                                RefreshToken.revoked_at.is_(None)))))
    record = MergeRecord(survivor_id=survivor_id, absorbed_id=absorbed_id, actor=actor,
                         reason=mask_text(reason.strip())[:500], forced=forced, moved=moved,
                         absorbed_status=absorbed.status,
                         absorbed_password_hash=absorbed.password_hash)
    absorbed.status, absorbed.password_hash = "merged", None
    db.session.add(record)
    db.session.flush()
    return record


def finish_merge(record: MergeRecord) -> None:
    """After the merge committed: revoke the absorbed person's grants, audit."""
    for gid in (record.moved or {}).get("revoked_grants") or []:
        revoke_grant(gid, reason="person_merged")
    audit.record("person.merged", actor=record.actor, subject=record.survivor_id,
                 details={"record": record.id, "survivor": record.survivor_id,
                          "absorbed": record.absorbed_id, "forced": record.forced,
                          "reason": record.reason, "counts": counts(record).__dict__})


def counts(record: MergeRecord) -> Counts:
    moved = record.moved or {}
    return Counts(**{t: len(moved.get(t) or []) for t in MOVED_TABLES},
                  consent=len((moved.get("consent") or {}).get("absorbed") or []),
                  revoked_grants=len(moved.get("revoked_grants") or []))


def undo_merge(record_id: int, *, actor: str) -> MergeRecord:
    """Put back what ``record_id`` moved. Refused when it was undone already, or when a
    later merge (not undone) involves either person: undo those first, newest first."""
    return _committed(lambda: prepare_undo(record_id, actor=actor), finish_undo)


def prepare_undo(record_id: int, *, actor: str) -> MergeRecord:
    record = db.session.get(MergeRecord, record_id, with_for_update=True) \
        if row_id(record_id) else None
    if record is None:
        raise MergeError(f"no merge record {record_id}")
    if record.undone_at is not None:
        raise MergeError(f"merge record {record_id} was already undone")
    people = (record.survivor_id, record.absorbed_id)
    later = db.session.scalar(db.select(MergeRecord.id).where(
        MergeRecord.id > record.id, MergeRecord.undone_at.is_(None),
        db.or_(MergeRecord.survivor_id.in_(people), MergeRecord.absorbed_id.in_(people)))
        .limit(1))
    if later is not None:
        raise MergeError(f"merge record {later} came later and involves the same persons; "
                         "undo it first")
    absorbed = db.session.get(Person, record.absorbed_id, with_for_update=True)
    if absorbed is None:
        raise MergeError(f"no person {record.absorbed_id}")
    moved = record.moved or {}
    for table, model in MOVED_TABLES.items():
        ids = moved.get(table) or []
        if ids:
            # Only rows still with the survivor: one moved on since is not taken back.
            db.session.execute(db.update(model).where(
                model.id.in_(ids), model.person_id == record.survivor_id)
                .values(person_id=record.absorbed_id))
    consent = moved.get("consent") or {}
    for client_id, row in (consent.get("survivor_before") or {}).items():
        mine = db.session.get(Consent, (record.survivor_id, client_id))
        if row is None:
            if mine is not None:
                db.session.delete(mine)
        elif mine is None:
            db.session.add(Consent(person_id=record.survivor_id, **row))
        else:
            mine.scopes, mine.granted_at = row["scopes"], row["granted_at"]
    db.session.flush()
    for row in consent.get("absorbed") or []:
        db.session.add(Consent(person_id=record.absorbed_id, **row))
    absorbed.status = record.absorbed_status
    absorbed.password_hash = record.absorbed_password_hash
    record.undone_at, record.undone_by = time.time(), actor
    db.session.flush()
    return record


def finish_undo(record: MergeRecord) -> None:
    audit.record("person.merge_undone", actor=record.undone_by, subject=record.absorbed_id,
                 details={"record": record.id, "survivor": record.survivor_id,
                          "absorbed": record.absorbed_id, "counts": counts(record).__dict__})


def describe(record: MergeRecord) -> dict:
    """The record for ``--json`` output and the API: ids and counts, no personal data."""
    return {"id": record.id, "survivor": record.survivor_id, "absorbed": record.absorbed_id,
            "actor": record.actor, "reason": record.reason, "forced": record.forced,
            "counts": counts(record).__dict__, "created_at": record.created_at,
            "undone_at": record.undone_at, "undone_by": record.undone_by}
