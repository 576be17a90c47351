"""The review queue: administrators approve, reject or merge into a chosen person, and
can undo. Every decision is audited; undo restores what the decision changed."""

from __future__ import annotations

import time

from idp import audit
from idp.extensions import db
from idp.models import LegacyAccount, Person, ReviewItem

from .importer import read_row


class ReviewError(ValueError):
    pass


def _item(item_id: int, *, state: str | None = None) -> tuple[ReviewItem, LegacyAccount]:
    item = db.session.get(ReviewItem, item_id)
    if item is None:
        raise ReviewError(f"no review item {item_id}")
    if state and item.state != state:
        raise ReviewError(f"review item {item_id} is {item.state}, not {state}")
    return item, db.session.get(LegacyAccount, item.legacy_account_id)


def approve(item_id: int, *, by: str, person_id: str | None = None) -> ReviewItem:
    """Link the legacy account to ``person_id``, to the single candidate, or (for a row
    with a valid ID number and no candidate) to a new person made from the row."""
    item, account = _item(item_id, state="pending")
    created = None
    target = person_id or (item.candidates[0] if len(item.candidates) == 1 else None)
    if target is not None:
        person = db.session.get(Person, target)
        if person is None:
            raise ReviewError(f"no person {target}")
    else:
        from idp.identity import InvalidIdNumber, parse_person_id

        row = read_row(account)
        try:
            number = parse_person_id(row.get("id_number") or "").number
        except InvalidIdNumber:
            raise ReviewError("several candidates or no valid ID number: name the person "
                              "to merge into (--person)") from None
        person = Person(id_kind="resident", name=(row.get("name") or "未知")[:128],
                        password_hash=account.password_hash)
        person.id_number = number
        db.session.add(person)
        db.session.flush()
        created = person.id
    item.outcome = {"prev_state": account.state, "prev_person": account.person_id,
                    "created_person": created}
    account.person_id, account.state = person.id, "merged"
    item.state, item.decided_by, item.decided_at = "approved", by, time.time()
    db.session.commit()
    audit.record("legacy.approve", actor=by, subject=person.id,
                 details={"item": item.id, "source": account.source, "reason": item.reason,
                          "created_person": bool(created)})
    return item


def reject(item_id: int, *, by: str) -> ReviewItem:
    item, account = _item(item_id, state="pending")
    item.outcome = {"prev_state": account.state, "prev_person": account.person_id,
                    "created_person": None}
    account.state = "rejected"
    item.state, item.decided_by, item.decided_at = "rejected", by, time.time()
    db.session.commit()
    audit.record("legacy.reject", actor=by, details={"item": item.id, "source": account.source,
                                                     "reason": item.reason})
    return item


def undo(item_id: int, *, by: str) -> ReviewItem:
    item, account = _item(item_id)
    if item.state not in ("approved", "rejected"):
        raise ReviewError(f"review item {item_id} is {item.state}: nothing to undo")
    out = item.outcome or {}
    account.state, account.person_id = out.get("prev_state", "queued"), out.get("prev_person")
    if out.get("created_person"):
        person = db.session.get(Person, out["created_person"])
        if person is not None:
            # Kept (its history may be referenced) but unable to sign in or get tokens.
            person.status = "merged"
    previous = item.state
    item.state, item.decided_by, item.decided_at = "pending", by, time.time()
    db.session.commit()
    audit.record("legacy.undo", actor=by, details={"item": item.id, "undid": previous})
    return item
