"""Streaming, batched, resumable import of one legacy source.

Each batch is one transaction: read up to ``batch_size`` rows, look up what we already
hold for them in one query, decide the new and changed ones (``matcher.decide``), write,
commit. A killed import leaves whole batches done or not done; running it again skips
the rows already done (their fingerprint is unchanged) and finishes the rest, so the
end state is that of one clean run. Rows gone from the source are flagged only after a
complete read, never deleted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice

from flask import current_app

from idp import audit
from idp.extensions import db
from idp.models import LegacyAccount, Person, ReviewItem

from .matcher import Decision, People, decide


@dataclass
class Summary:
    source: str
    run_id: str
    dry_run: bool
    read: int = 0
    merged: int = 0
    created: int = 0
    queued: int = 0
    invalid: int = 0
    unchanged: int = 0
    updated: int = 0
    gone: int = 0
    skipped_rows: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _row_blob(row) -> str:
    data = {k: v for k, v in asdict(row).items() if k != "raw" and v is not None}
    return current_app.extensions["idp.fieldcrypto"].encrypt(
        json.dumps(data, ensure_ascii=False, sort_keys=True), "legacy_account.row")


def read_row(account: LegacyAccount) -> dict:
    """The source row as last imported (decrypted; for administrators' review)."""
    return json.loads(current_app.extensions["idp.fieldcrypto"].decrypt(
        account.row_enc, "legacy_account.row"))


def _legacy_hash(row) -> str | None:
    if not row.password_hash or not row.password_format:
        return None
    from idp.crypto.legacy_hashes import LegacyHashError, encode_legacy

    try:
        return encode_legacy(row.password_format, row.password_hash, row.password_salt)
    except LegacyHashError:
        return None


def _apply(row, decision: Decision, account: LegacyAccount, summary: Summary,
           people: People, questions: list) -> None:
    if account.id is not None:
        # The row changed: an older open question about it is answered by this decision.
        db.session.execute(db.update(ReviewItem).where(
            ReviewItem.legacy_account_id == account.id, ReviewItem.state == "pending")
            .values(state="superseded"))
    account.rule = decision.rule
    summary.rules[decision.rule] = summary.rules.get(decision.rule, 0) + 1
    legacy_hash = _legacy_hash(row)
    account.password_hash = legacy_hash
    if decision.action == "create":
        # The id is made here (not at flush) so the batch needs no flush per row.
        person = Person(id=uuid.uuid4().hex, id_kind="resident", status="active",
                        name=(row.name or "").strip()[:128] or "未知",
                        assurance_level="L2", password_hash=legacy_hash)
        person.id_number = decision.id_number
        if decision.phone and decision.phone not in people.taken_phones:
            person.phone = decision.phone
            people.taken_phones.add(decision.phone)
        db.session.add(person)
        people.add(person)
        account.person_id, account.state = person.id, "created"
        summary.created += 1
    elif decision.action == "merge":
        person = db.session.get(Person, decision.person_id)
        if person.password_hash is None and legacy_hash:
            # The citizen's old password works once, then is re-hashed (authn.password).
            person.password_hash = legacy_hash
        account.person_id, account.state = person.id, "merged"
        summary.merged += 1
    else:
        invalid = decision.rule.startswith("invalid_")
        account.person_id, account.state = None, "invalid" if invalid else "queued"
        summary.invalid += invalid
        summary.queued += not invalid
        questions.append((account, decision))


def run_import(source, *, dry_run: bool = False, batch_size: int = 1000,
               progress: Callable[[Summary], None] | None = None) -> Summary:
    started = time.monotonic()
    summary = Summary(source=source.name, run_id=uuid.uuid4().hex, dry_run=dry_run)
    for batch in _batches(source.rows(), batch_size):
        now = time.time()
        ids = [r.legacy_id for r in batch]
        held = {a.legacy_id: a for a in db.session.scalars(db.select(LegacyAccount).where(
            LegacyAccount.source == source.name, LegacyAccount.legacy_id.in_(ids)))}
        todo = []
        for row in batch:
            summary.read += 1
            fp = row.fingerprint()
            account = held.get(row.legacy_id)
            if account is not None and account.fingerprint == fp and account.state != "gone":
                account.last_seen, account.run_id = now, summary.run_id
                summary.unchanged += 1
            else:
                todo.append((row, fp))
        people = People([row for row, _fp in todo]) if todo else None
        questions: list = []
        for row, fp in todo:
            account = held.get(row.legacy_id)
            if account is None:
                account = LegacyAccount(source=source.name, legacy_id=row.legacy_id,
                                        first_seen=now, state="new", rule="")
                db.session.add(account)
                held[row.legacy_id] = account
            else:
                summary.updated += 1
            account.fingerprint, account.row_enc = fp, _row_blob(row)
            account.last_seen, account.run_id = now, summary.run_id
            _apply(row, decide(row, trusted=source.trusted, people=people), account, summary,
                   people, questions)
        if questions:
            db.session.flush()  # one flush gives every new account its id
            db.session.add_all(ReviewItem(legacy_account_id=a.id, reason=d.rule,
                                          candidates=d.candidates) for a, d in questions)
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
        if progress:
            progress(summary)
    summary.skipped_rows = getattr(source, "error_count", 0)
    if not dry_run:
        gone = db.session.execute(
            db.update(LegacyAccount)
            .where(LegacyAccount.source == source.name, LegacyAccount.run_id != summary.run_id,
                   LegacyAccount.state != "gone")
            .values(state="gone"))
        summary.gone = gone.rowcount or 0
        db.session.commit()
    summary.seconds = round(time.monotonic() - started, 3)
    if not dry_run:
        audit.record("legacy.import", actor="system", details={
            k: v for k, v in summary.as_dict().items() if k not in ("rules",)})
    return summary
