"""The review queue: administrators approve, reject or merge into a chosen person (or,
for an organisation's legacy account, a chosen organisation), and can undo. The admin
console, its REST API and the ``idp merge`` commands all decide through these functions.
Every decision is audited (``legacy.approve|reject|merge|undo``) with the rule that
queued the row, the item, the legacy source and id, and the reviewer's note; undo
restores what the decision changed, as recorded in ``ReviewItem.outcome``.

An item is an organisation's when its account is linked to an organisation or its rule
is one of :mod:`connectors.org_matcher`'s (``org_…``, ``invalid_credit_code…``,
``invalid_org_code…``); its candidates are then organisation ids, and the organisation
to link to is named by its unified social credit code (GB 32100).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

from sqlalchemy.exc import IntegrityError

from idp import audit
from idp.accounts import person_by_id_number
from idp.extensions import db
from idp.identity import InvalidCreditCode, InvalidIdNumber, parse_credit_code, parse_person_id
from idp.models import (
    LegacyAccount,
    Membership,
    Organisation,
    Person,
    ReviewItem,
)

from . import merge as person_merge
from .importer import read_row
from .org_matcher import prepare_org

STATES = ("pending", "approved", "rejected", "merged", "superseded")
ORG_RULES = ("org_", "invalid_credit_code", "invalid_org_code")
PERSON, ORGANISATION = "person", "organisation"


class ReviewError(ValueError):
    pass


class InvalidTarget(ReviewError):
    """What the caller named cannot be used (a malformed credit code, a person for an
    organisation's item or the reverse): the request is wrong, not the item's state."""


def _item(item_id: int, *, state: str | None = None) -> tuple[ReviewItem, LegacyAccount]:
    item = db.session.get(ReviewItem, item_id) if person_merge.row_id(item_id) else None
    if item is None:
        raise ReviewError(f"no review item {item_id}")
    if state and item.state != state:
        raise ReviewError(f"review item {item_id} is {item.state}, not {state}")
    return item, db.session.get(LegacyAccount, item.legacy_account_id)


def kind_of(item: ReviewItem, account: LegacyAccount) -> str:
    if account.org_id is not None or (item.outcome or {}).get("kind") == ORGANISATION:
        return ORGANISATION
    return ORGANISATION if item.reason.startswith(ORG_RULES) else PERSON


def kind(item_id: int) -> str | None:
    """``"person"`` or ``"organisation"``; None when there is no such item."""
    item = db.session.get(ReviewItem, item_id) if person_merge.row_id(item_id) else None
    if item is None:
        return None
    return kind_of(item, db.session.get(LegacyAccount, item.legacy_account_id))


def _active_person(person_id: str) -> Person:
    person = db.session.get(Person, person_id)
    if person is None:
        raise ReviewError(f"no person {person_id}")
    if person.status != "active":
        raise ReviewError(f"person {person_id} is {person.status}")
    return person


def _active_org(*, uscc: str | None = None, org_id: str | None = None) -> Organisation:
    if uscc is not None:
        try:
            code = parse_credit_code(uscc).code
        except InvalidCreditCode as exc:
            raise InvalidTarget(f"invalid credit code: {exc.message_en}") from None
        org = db.session.scalar(db.select(Organisation).where(Organisation.uscc == code))
    else:
        org = db.session.get(Organisation, org_id)
    # The code itself stays out of the message: a type-92 code (个体工商户) names a person.
    if org is None:
        raise ReviewError("no organisation with this credit code")
    if org.status != "active":
        raise ReviewError(f"the organisation is {org.status}")
    return org


def _audit(event: str, item: ReviewItem, account: LegacyAccount, by: str, note: str,
           subject: str | None = None, **extra) -> None:
    # The legacy id is the old system's key, not personal data; the row's name and
    # numbers stay out of the entry (and the audit log masks whatever slips in).
    audit.record(event, actor=by, subject=subject,
                 details={"item": item.id, "rule": item.reason, "source": account.source,
                          "legacy_id": account.legacy_id, "note": note, **extra})


def _decided(item: ReviewItem, state: str, by: str) -> None:
    item.state, item.decided_by, item.decided_at = state, by, time.time()


def _before(item: ReviewItem, account: LegacyAccount) -> dict:
    """What a first decision on the item may change, as it is now."""
    if kind_of(item, account) == ORGANISATION:
        return {"kind": ORGANISATION, "prev_state": account.state, "prev_org": account.org_id,
                "created_org": None}
    return {"prev_state": account.state, "prev_person": account.person_id,
            "created_person": None}


@contextmanager
def _transaction(on_conflict: str = "the review item changed meanwhile") -> Iterator[None]:
    """Commit what the block wrote, or none of it: a refused person merge, and a row
    someone else made meanwhile (a unique credit code, say), become ReviewError."""
    try:
        yield
        db.session.commit()
    except person_merge.MergeError as exc:
        db.session.rollback()
        raise ReviewError(str(exc)) from None
    except IntegrityError:
        db.session.rollback()
        raise ReviewError(on_conflict) from None
    except BaseException:
        db.session.rollback()
        raise


def approve(item_id: int, *, by: str, person_id: str | None = None, uscc: str | None = None,
            note: str = "") -> ReviewItem:
    """Link the legacy account to ``person_id``, to the single candidate, or (for a row
    with a valid ID number and no candidate) to a new person made from the row. For an
    organisation's account: to the organisation with credit code ``uscc``, the single
    candidate organisation, or a new one made from the row's valid credit code."""
    item, account = _item(item_id, state="pending")
    if kind_of(item, account) == ORGANISATION:
        if person_id:
            raise InvalidTarget("this legacy account is an organisation's: name the "
                                "organisation by its credit code (--org)")
        return _approve_org(item, account, by=by, uscc=uscc, note=note)
    if uscc:
        raise InvalidTarget("this legacy account is a person's: name a person (--person)")
    outcome = _before(item, account)
    target = person_id or (item.candidates[0] if len(item.candidates) == 1 else None)
    with _transaction("a person with this ID number exists now: merge into them"):
        if target is not None:
            person = _active_person(target)
        else:
            person = _person_from_row(account)
            outcome["created_person"] = person.id
        item.outcome = outcome
        account.person_id, account.state = person.id, "merged"
        _decided(item, "approved", by)
    _audit("legacy.approve", item, account, by, note, subject=person.id,
           created_person=bool(outcome["created_person"]))
    return item


def _person_from_row(account: LegacyAccount) -> Person:
    """A new person from the row's own valid ID number (name from the row)."""
    row = read_row(account)
    try:
        parsed = parse_person_id(row.get("id_number") or "")
    except InvalidIdNumber:
        raise ReviewError("several candidates or no valid ID number: name the person "
                          "to merge into (--person)") from None
    if person_by_id_number(parsed.number) is not None:
        raise ReviewError("a person with this ID number exists now: merge into them")
    person = Person(id_kind=parsed.kind, name=(row.get("name") or "未知")[:128],
                    password_hash=account.password_hash)
    person.id_number = parsed.number
    db.session.add(person)
    db.session.flush()
    return person


def _org_from_row(account: LegacyAccount) -> Organisation:
    """A new organisation from the row's own credit code, as a trusted import would
    have made it (``connectors.importer``): name from the row, else from the registry."""
    from idp.orgs import registry

    row = read_row(account)
    prep = prepare_org(SimpleNamespace(credit_code=row.get("credit_code"),
                                       org_code=row.get("org_code")))
    if prep.error or not prep.credit_code:
        raise ReviewError("several candidates or no valid credit code: name the "
                          "organisation to link to by its credit code (--org)")
    if db.session.scalar(db.select(Organisation.id).where(
            Organisation.uscc == prep.credit_code)):
        raise ReviewError("an organisation with this credit code exists now: merge into it")
    name, org_type = (row.get("name") or "").strip(), prep.org_type
    record = registry().lookup(prep.credit_code)
    if record is not None:
        name, org_type = name or record.name, record.org_type or org_type
    if not name:
        raise ReviewError("the organisation's name is neither in the row nor in the "
                          "registry: register it (idp org add), then merge into it")
    org = Organisation(uscc=prep.credit_code, name=name[:255], org_type=(org_type or "")[:64],
                       status="active")
    db.session.add(org)
    db.session.flush()
    return org


def _approve_org(item: ReviewItem, account: LegacyAccount, *, by: str, uscc: str | None,
                 note: str) -> ReviewItem:
    outcome = _before(item, account)
    with _transaction("an organisation with this credit code exists now: merge into it"):
        if uscc:
            org = _active_org(uscc=uscc)
        elif len(item.candidates) == 1:
            org = _active_org(org_id=item.candidates[0])
        else:
            org = _org_from_row(account)
            outcome["created_org"] = org.id
        item.outcome = outcome
        account.org_id, account.state = org.id, "merged"
        _decided(item, "approved", by)
    _audit("legacy.approve", item, account, by, note, subject=f"org:{org.uscc}",
           org=org.id, created_org=bool(outcome["created_org"]))
    return item


def reject(item_id: int, *, by: str, note: str = "") -> ReviewItem:
    item, account = _item(item_id, state="pending")
    with _transaction():
        item.outcome = _before(item, account)
        account.state = "rejected"
        _decided(item, "rejected", by)
    _audit("legacy.reject", item, account, by, note)
    return item


def merge(item_id: int, *, by: str, person_id: str | None = None, uscc: str | None = None,
          force: bool = False, note: str = "") -> ReviewItem:
    """Link the legacy account to the chosen person. When the account is linked to
    another person already (an earlier approval, or the importer's own match), that
    person is the same citizen: they are merged into the chosen one
    (:func:`connectors.merge.merge_persons`), in the same transaction. An organisation's
    account is linked to the organisation with credit code ``uscc`` instead (nothing is
    merged: organisations are one per credit code)."""
    item, account = _item(item_id)
    if item.state not in ("pending", "approved"):
        raise ReviewError(f"review item {item_id} is {item.state}: nothing to merge")
    if kind_of(item, account) == ORGANISATION:
        if person_id or not uscc:
            raise InvalidTarget("this legacy account is an organisation's: name the "
                                "organisation to link to by its credit code")
        return _merge_org(item, account, by=by, uscc=uscc, note=note)
    if uscc or not person_id:
        raise InvalidTarget("this legacy account is a person's: name the person to merge "
                            "into")
    target = _active_person(person_id)
    outcome = dict(item.outcome or {}) if item.state == "approved" else _before(item, account)
    record = None
    with _transaction():
        if account.person_id and account.person_id != target.id:
            record = person_merge.prepare_merge(
                target.id, account.person_id, actor=by, force=force,
                reason=note or f"review item {item.id}")
        outcome["merge_record"] = record.id if record else None
        outcome["prev_decision"] = item.state
        account.person_id, account.state = target.id, "merged"
        item.outcome = outcome
        _decided(item, "merged", by)
    if record is not None:
        person_merge.finish_merge(record)
    _audit("legacy.merge", item, account, by, note, subject=target.id,
           merge_record=record.id if record else None)
    return item


def _merge_org(item: ReviewItem, account: LegacyAccount, *, by: str, uscc: str,
               note: str) -> ReviewItem:
    org = _active_org(uscc=uscc)
    # After an approval, its outcome (an organisation it created, say) still stands to
    # be undone: keep it, and note which decision this one replaced.
    outcome = dict(item.outcome or {}) if item.state == "approved" else _before(item, account)
    outcome["prev_decision"] = item.state
    with _transaction():
        account.org_id, account.state = org.id, "merged"
        item.outcome = outcome
        _decided(item, "merged", by)
    _audit("legacy.merge", item, account, by, note, subject=f"org:{org.uscc}", org=org.id)
    return item


def undo(item_id: int, *, by: str, note: str = "") -> ReviewItem:
    """Back to pending, as before the decision; a person merge made by the decision is
    undone with it, and a person the approval created is disabled (kept, since its
    history may be referenced, but unable to sign in or get tokens). An organisation
    the approval created is removed again — unless something came to rely on it since
    (a membership, another legacy account), in which case it stays: it is a real
    registered organisation, and taking it away would break those."""
    item, account = _item(item_id)
    if item.state not in ("approved", "rejected", "merged"):
        raise ReviewError(f"review item {item_id} is {item.state}: nothing to undo")
    if kind_of(item, account) == ORGANISATION:
        return _undo_org(item, account, by=by, note=note)
    out = item.outcome or {}
    record, previous = None, item.state
    with _transaction():
        if out.get("merge_record"):
            record = person_merge.prepare_undo(out["merge_record"], actor=by)
        account.state, account.person_id = out.get("prev_state", "queued"), out.get("prev_person")
        if out.get("created_person"):
            person = db.session.get(Person, out["created_person"])
            if person is not None:
                person.status = "merged"
        _decided(item, "pending", by)
    if record is not None:
        person_merge.finish_undo(record)
    _audit("legacy.undo", item, account, by, note, undid=previous,
           merge_record=record.id if record else None)
    return item


def _undo_org(item: ReviewItem, account: LegacyAccount, *, by: str, note: str) -> ReviewItem:
    out = item.outcome or {}
    linked = db.session.get(Organisation, account.org_id) if account.org_id else None
    subject = f"org:{linked.uscc}" if linked else None
    removed = kept = False
    previous = item.state
    with _transaction():
        account.state, account.org_id = out.get("prev_state", "queued"), out.get("prev_org")
        created = (db.session.get(Organisation, out["created_org"]) if out.get("created_org")
                   else None)
        if created is not None:
            db.session.flush()
            relied_on = db.session.scalar(db.select(Membership.id).where(
                Membership.org_id == created.id).limit(1)) or db.session.scalar(
                db.select(LegacyAccount.id).where(LegacyAccount.org_id == created.id).limit(1))
            if relied_on:
                kept = True
            else:
                db.session.delete(created)
                removed = True
        _decided(item, "pending", by)
    _audit("legacy.undo", item, account, by, note, subject=subject, undid=previous,
           removed_org=removed, kept_created_org=kept)
    return item
