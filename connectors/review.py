"""The review queue: administrators approve, reject or merge into a chosen person, and
can undo. The admin console, its REST API and the ``idp merge`` commands all decide
through these functions. Every decision is audited (``legacy.approve|reject|merge|undo``)
with the rule that queued the row, the item, the legacy source and id, and the
reviewer's note; undo restores what the decision changed."""

from __future__ import annotations

import time

from idp import audit
from idp.extensions import db
from idp.models import LegacyAccount, Person, ReviewItem

from . import merge as person_merge
from .importer import read_row

STATES = ("pending", "approved", "rejected", "merged", "superseded")


class ReviewError(ValueError):
    pass


def _item(item_id: int, *, state: str | None = None) -> tuple[ReviewItem, LegacyAccount]:
    item = db.session.get(ReviewItem, item_id)
    if item is None:
        raise ReviewError(f"no review item {item_id}")
    if state and item.state != state:
        raise ReviewError(f"review item {item_id} is {item.state}, not {state}")
    return item, db.session.get(LegacyAccount, item.legacy_account_id)


def _active_person(person_id: str) -> Person:
    person = db.session.get(Person, person_id)
    if person is None:
        raise ReviewError(f"no person {person_id}")
    if person.status != "active":
        raise ReviewError(f"person {person_id} is {person.status}")
    return person


def _audit(event: str, item: ReviewItem, account: LegacyAccount, by: str, note: str,
           subject: str | None = None, **extra) -> None:
    # The legacy id is the old system's key, not personal data; the row's name and
    # numbers stay out of the entry (and the audit log masks whatever slips in).
    audit.record(event, actor=by, subject=subject,
                 details={"item": item.id, "rule": item.reason, "source": account.source,
                          "legacy_id": account.legacy_id, "note": note, **extra})


def _decided(item: ReviewItem, state: str, by: str) -> None:
    item.state, item.decided_by, item.decided_at = state, by, time.time()


def approve(item_id: int, *, by: str, person_id: str | None = None,
            note: str = "") -> ReviewItem:
    """Link the legacy account to ``person_id``, to the single candidate, or (for a row
    with a valid ID number and no candidate) to a new person made from the row."""
    item, account = _item(item_id, state="pending")
    created = None
    target = person_id or (item.candidates[0] if len(item.candidates) == 1 else None)
    if target is not None:
        person = _active_person(target)
    else:
        from idp.identity import InvalidIdNumber, parse_person_id

        row = read_row(account)
        try:
            number = parse_person_id(row.get("id_number") or "").number
        except InvalidIdNumber:
            raise ReviewError("several candidates or no valid ID number: name the person "
                              "to merge into (--person)") from None
        from idp.models import id_number_index

        if db.session.scalar(db.select(Person.id).where(
                Person.id_number_idx == id_number_index(number))):
            raise ReviewError("a person with this ID number exists now: merge into them")
        person = Person(id_kind="resident", name=(row.get("name") or "未知")[:128],
                        password_hash=account.password_hash)
        person.id_number = number
        db.session.add(person)
        db.session.flush()
        created = person.id
    item.outcome = {"prev_state": account.state, "prev_person": account.person_id,
                    "created_person": created}
    account.person_id, account.state = person.id, "merged"
    _decided(item, "approved", by)
    db.session.commit()
    _audit("legacy.approve", item, account, by, note, subject=person.id,
           created_person=bool(created))
    return item


def reject(item_id: int, *, by: str, note: str = "") -> ReviewItem:
    item, account = _item(item_id, state="pending")
    item.outcome = {"prev_state": account.state, "prev_person": account.person_id,
                    "created_person": None}
    account.state = "rejected"
    _decided(item, "rejected", by)
    db.session.commit()
    _audit("legacy.reject", item, account, by, note)
    return item


def merge(item_id: int, *, by: str, person_id: str, force: bool = False,
          note: str = "") -> ReviewItem:
    """Link the legacy account to the chosen person. When the account is linked to
    another person already (an earlier approval, or the importer's own match), that
    person is the same citizen: they are merged into the chosen one
    (:func:`connectors.merge.merge_persons`), in the same transaction."""
    item, account = _item(item_id)
    if item.state not in ("pending", "approved"):
        raise ReviewError(f"review item {item_id} is {item.state}: nothing to merge")
    target = _active_person(person_id)
    outcome = dict(item.outcome or {}) if item.state == "approved" else {
        "prev_state": account.state, "prev_person": account.person_id, "created_person": None}
    record = None
    try:
        if account.person_id and account.person_id != target.id:
            record = person_merge.prepare_merge(
                target.id, account.person_id, actor=by, force=force,
                reason=note or f"review item {item.id}")
        outcome["merge_record"] = record.id if record else None
        outcome["prev_decision"] = item.state
        account.person_id, account.state = target.id, "merged"
        item.outcome = outcome
        _decided(item, "merged", by)
        db.session.commit()
    except person_merge.MergeError as exc:
        db.session.rollback()
        raise ReviewError(str(exc)) from None
    except Exception:
        db.session.rollback()
        raise
    if record is not None:
        person_merge.finish_merge(record)
    _audit("legacy.merge", item, account, by, note, subject=target.id,
           merge_record=record.id if record else None)
    return item


def undo(item_id: int, *, by: str, note: str = "") -> ReviewItem:
    """Back to pending, as before the decision; a person merge made by the decision is
    undone with it, and a person the approval created is disabled (kept, since its
    history may be referenced, but unable to sign in or get tokens)."""
    item, account = _item(item_id)
    if item.state not in ("approved", "rejected", "merged"):
        raise ReviewError(f"review item {item_id} is {item.state}: nothing to undo")
    out = item.outcome or {}
    record = None
    try:
        if out.get("merge_record"):
            record = person_merge.prepare_undo(out["merge_record"], actor=by)
        account.state, account.person_id = out.get("prev_state", "queued"), out.get("prev_person")
        if out.get("created_person"):
            person = db.session.get(Person, out["created_person"])
            if person is not None:
                person.status = "merged"
        previous = item.state
        _decided(item, "pending", by)
        db.session.commit()
    except person_merge.MergeError as exc:
        db.session.rollback()
        raise ReviewError(str(exc)) from None
    except Exception:
        db.session.rollback()
        raise
    if record is not None:
        person_merge.finish_undo(record)
    _audit("legacy.undo", item, account, by, note, undid=previous,
           merge_record=record.id if record else None)
    return item
