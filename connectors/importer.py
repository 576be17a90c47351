"""Streaming, batched, resumable import of one legacy source.

Each batch is one transaction: read up to ``batch_size`` rows, fetch what we hold for
them (id, fingerprint, state) in one query, and set aside the unchanged ones at once —
no decryption, no matching, no write. The new and changed rows are parsed and
blind-indexed once, matched against people (or organisations) fetched for the whole
batch, and written set-at-a-time (:mod:`connectors.bulk`: COPY on PostgreSQL), then
the batch commits. Memory stays flat: nothing outlives its batch except the counts
and one bit per unchanged account.

On several cores (``workers``) the pure CPU part of a batch — parsing and blind-indexing
identifiers, encrypting the row and a new person's number and phone
(:func:`prepare_rows`) — runs in worker processes for the next batches while this
process decides and writes the current one. Decisions, writes and commits stay here, one
batch after another in source order, so the outcome (and the reject report) is row for
row that of the serial run; legacy ids of batches read ahead count as already read.

A killed import leaves whole batches done or not done; running it again skips the
rows already done (their fingerprint is unchanged) and finishes the rest, so the end
state is that of one clean run. Rows gone from the source are flagged only after a
complete read, never deleted.

Every decision is on its ``legacy_account`` row: ``state``, ``rule`` (why), ``run_id``
and ``last_seen`` (the run that decided it, and when; an unchanged row keeps them, so a
re-run writes nothing for it). The run itself is one audit entry (``legacy.import``)
with its counts and rules. A legacy id that comes again in the same run is counted as
``repeated`` and ignored: the first occurrence counts, so re-runs stay stable.

Nothing is dropped quietly: rows the source could not read, invalid rows, repeated ids
and rows whose password hash is unusable (imported without it) are counted on the
summary and written to the reject report (:mod:`connectors.rejects`).

A dry run is the real run in one transaction that is rolled back at the end — not a
rollback per batch, which forgot what earlier batches did: a legacy id repeated across
two batches was not ``repeated``, and a person created by one batch was created again,
not merged, by the next. Its counts are therefore those the real run will report
(``gone`` included). On the embedded SQLite database this holds the write lock for the
whole dry run, as one long batch would.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from itertools import islice

from flask import current_app

from idp import audit
from idp.extensions import db
from idp.models import ID_NUMBER, PHONE, LegacyAccount, Organisation, Person, ReviewItem

from .base import LegacyRow, RowError
from .bulk import among, insert_rows, update_rows
from .matcher import Decision, Known, People, Prepared, decide, prepare
from .org_matcher import KnownOrg, OrgPrepared, Orgs, decide_org, is_org_row, prepare_org
from .rejects import RejectReport

BATCH_SIZE = 2000
PARALLEL_FROM = 20_000  # rows, by the source's own count: worker processes from here on
ROW_CONTEXT = "legacy_account.row"
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)

ACCOUNTS = LegacyAccount.__table__
PEOPLE = Person.__table__
ORGS = Organisation.__table__
REVIEWS = ReviewItem.__table__


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
    skipped_rows: int = 0  # rows the source could not read (see Source.errors)
    repeated: int = 0  # rows whose legacy id came earlier in the same run: ignored
    organisations: int = 0  # rows decided as organisations (of the counts above)
    password_rejected: int = 0  # imported without the password: its hash was unusable
    rejected: int = 0  # lines in the reject report: skipped, invalid, repeated, password
    rejects: dict[str, int] = field(default_factory=dict)  # the same, by category
    reject_report: str | None = None  # its path, when it has any line
    total: int | None = None  # about how many records the source holds (for progress)
    rules: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def done(self) -> int:
        """Records handled so far: read, or skipped by the source."""
        return self.read + self.skipped_rows

    def as_dict(self) -> dict:
        return asdict(self)


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


_ROW_KEYS = tuple(f.name for f in fields(LegacyRow) if f.name not in ("raw", "where"))


def row_blob(row) -> str:
    """A row as the review queue reads it back (:func:`read_row`), encrypted."""
    data = {k: v for k in _ROW_KEYS if (v := getattr(row, k)) is not None}
    return current_app.extensions["idp.fieldcrypto"].encrypt(_JSON.encode(data), ROW_CONTEXT)


def read_row(account: LegacyAccount) -> dict:
    """The source row as last imported (decrypted; for administrators' review)."""
    return json.loads(current_app.extensions["idp.fieldcrypto"].decrypt(
        account.row_enc, ROW_CONTEXT))


def _legacy_hash(row) -> tuple[str | None, str | None]:
    """(the stored form of the row's old password hash, why it is unusable)."""
    if not row.password_hash:
        return None, None
    if not row.password_format:
        return None, "the source has a password hash but no [password] format"
    from idp.crypto.legacy_hashes import LegacyHashError, encode_legacy

    try:
        return encode_legacy(row.password_format, row.password_hash, row.password_salt), None
    except LegacyHashError as exc:
        return None, str(exc)  # never holds the hash: says what is wrong with it


class _Seen:
    """Ids of accounts read unchanged in this run, one bit each (125 KB per million),
    so that rows gone from the source can be found after the read without having
    touched the unchanged ones."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0

    def add(self, account_id: int) -> None:
        byte, bit = account_id >> 3, 1 << (account_id & 7)
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte + 1 - len(self._bits) + len(self._bits) // 2))
        if not self._bits[byte] & bit:
            self._bits[byte] |= bit
            self.count += 1

    def __contains__(self, account_id: int) -> bool:
        byte = account_id >> 3
        return byte < len(self._bits) and bool(self._bits[byte] >> (account_id & 7) & 1)


class _Batch:
    """The writes one batch makes, collected while deciding and then sent together."""

    def __init__(self, source, summary: Summary, now: float, rejects: RejectReport) -> None:
        self.source, self.summary, self.now, self.rejects = source, summary, now, rejects
        self.crypto = current_app.extensions["idp.fieldcrypto"]
        self.new_people: dict[str, dict] = {}
        self.new_orgs: list[dict] = []
        self.password_for: dict[str, str] = {}  # existing person id → legacy hash
        self.new_accounts: list[dict] = []
        self.changed_accounts: list[dict] = []
        self.questions: list[tuple[str, int | None, Decision]] = []

    def person(self, row, prep, sealed: tuple[str | None, str | None], decision: Decision,
               legacy_hash: str | None, people: People) -> str | None:
        if decision.action == "create":
            person_id = uuid.uuid4().hex
            number_enc, phone_enc = sealed
            self.new_people[person_id] = {
                "id": person_id, "id_number_enc": number_enc,
                "id_number_idx": prep.number_idx, "id_kind": prep.id_kind,
                "name": (row.name or "").strip()[:128] or "未知",
                "phone_enc": phone_enc,
                "phone_idx": prep.phone_idx, "password_hash": legacy_hash, "status": "active",
                "assurance_level": "L2", "assurance_method": None,
                "assurance_verified_at": None, "created_at": self.now, "updated_at": self.now}
            people.add(Known(person_id, self.new_people[person_id]["name"], bool(legacy_hash),
                             prep.number_idx, prep.phone_idx))
            return person_id
        if decision.action == "merge":
            known = people.by_number[prep.number_idx]
            if not known.has_password and legacy_hash:
                # The citizen's old password works once, then is re-hashed (authn.password).
                known.has_password = True
                if decision.person_id in self.new_people:
                    self.new_people[decision.person_id]["password_hash"] = legacy_hash
                else:
                    self.password_for[decision.person_id] = legacy_hash
            return decision.person_id
        return None

    def org(self, prep, decision: Decision, orgs: Orgs) -> str | None:
        if decision.action == "create":
            org_id = uuid.uuid4().hex
            self.new_orgs.append({"id": org_id, "uscc": prep.credit_code,
                                  "name": decision.org_name[:255],
                                  "org_type": (decision.org_type or "")[:64],
                                  "status": "active", "created_at": self.now})
            orgs.add(KnownOrg(org_id, prep.credit_code, decision.org_name))
            return org_id
        return decision.org_id if decision.action == "merge" else None

    def account(self, row, fingerprint: str, held, blob: str, decision: Decision, legacy_hash,
                person_id: str | None, org_id: str | None) -> None:
        s = self.summary
        s.rules[decision.rule] = s.rules.get(decision.rule, 0) + 1
        if decision.action == "create":
            state = "created"
            s.created += 1
        elif decision.action == "merge":
            state = "merged"
            s.merged += 1
        else:
            invalid = decision.rule.startswith("invalid_")
            state = "invalid" if invalid else "queued"
            s.invalid += invalid
            s.queued += not invalid
            if invalid:
                self.rejects.add(row.where, "invalid", decision.rule, row.legacy_id)
            self.questions.append((row.legacy_id, held[0] if held else None, decision))
        values = {"fingerprint": fingerprint, "row_enc": blob,
                  "person_id": person_id, "org_id": org_id, "state": state,
                  "rule": decision.rule, "password_hash": legacy_hash,
                  "last_seen": self.now, "run_id": s.run_id}
        if held is None:
            self.new_accounts.append({"source": self.source.name, "legacy_id": row.legacy_id,
                                      "first_seen": self.now, **values})
        else:
            s.updated += 1
            self.changed_accounts.append({"id": held[0], **values})

    def write(self) -> None:
        insert_rows(PEOPLE, list(self.new_people.values()))
        insert_rows(ORGS, self.new_orgs)
        update_rows(PEOPLE, "id", ({"id": k, "password_hash": v}
                                   for k, v in self.password_for.items()))
        if self.changed_accounts:
            # A changed row's open question is answered by this decision.
            db.session.execute(db.update(ReviewItem).where(
                among(ReviewItem.legacy_account_id, [a["id"] for a in self.changed_accounts]),
                ReviewItem.state == "pending").values(state="superseded"))
            update_rows(ACCOUNTS, "id", self.changed_accounts)
        insert_rows(ACCOUNTS, self.new_accounts)
        if not self.questions:
            return
        new_ids = [legacy_id for legacy_id, account_id, _d in self.questions if account_id is None]
        ids = dict(db.session.execute(db.select(LegacyAccount.legacy_id, LegacyAccount.id).where(
            LegacyAccount.source == self.source.name,
            among(LegacyAccount.legacy_id, new_ids))).all()) if new_ids else {}
        insert_rows(REVIEWS, [
            {"legacy_account_id": account_id or ids[legacy_id], "reason": d.rule,
             "candidates": d.candidates, "state": "pending", "outcome": {},
             "decided_by": None, "decided_at": None, "created_at": self.now}
            for legacy_id, account_id, d in self.questions])


@dataclass
class _Read:
    """A batch as read and sorted, before any decision: the rows to decide (with their
    fingerprint and what we hold for them) and what reading it already counted.

    Its counts and reject lines go on the summary and the report only when the batch is
    decided (:func:`_decide_batch`), so a batch read ahead of time (the parallel path)
    reports in the very order the serial path does."""

    todo: list = field(default_factory=list)  # (row, fingerprint, held or None)
    read: int = 0
    repeated: int = 0
    unchanged: int = 0
    rejects: list = field(default_factory=list)  # RejectReport.add arguments, in order
    skipped_rows: int = 0  # the source's error count once this batch was read


def _read_batch(source, batch: list, run_id: str, seen: _Seen, pending: set[str],
                rejects: list) -> _Read:
    """Sort a batch: repeated legacy ids, unchanged rows (set aside with one query, no
    decryption) and the rows to decide. ``pending`` holds the legacy ids of batches
    read but not yet decided: they count as already read in this run, as they will be
    once decided. ``rejects`` are the lines the source reported while this batch was
    read (unreadable rows), kept first."""
    out = _Read(read=len(batch), rejects=rejects,
                skipped_rows=getattr(source, "error_count", 0))
    query = db.select(LegacyAccount.legacy_id, LegacyAccount.id, LegacyAccount.fingerprint,
                      LegacyAccount.state, LegacyAccount.run_id).where(
        LegacyAccount.source == source.name,
        among(LegacyAccount.legacy_id, [r.legacy_id for r in batch]))
    held = {legacy_id: (account_id, fp, state, account_run)
            for legacy_id, account_id, fp, state, account_run in db.session.execute(query)}
    in_batch = set()
    for row in batch:
        known = held.get(row.legacy_id)
        if row.legacy_id in in_batch or row.legacy_id in pending or known is not None and (
                known[3] == run_id or known[0] in seen):
            # The legacy id was already read in this run: the first occurrence counts,
            # which keeps a re-run of the same file stable.
            out.repeated += 1
            out.rejects.append((row.where, "repeated",
                                "legacy id already read in this run; ignored", row.legacy_id))
            continue
        in_batch.add(row.legacy_id)
        fingerprint = row.fingerprint()
        if known is not None and known[1] == fingerprint and known[2] != "gone":
            seen.add(known[0])
            out.unchanged += 1
        else:
            out.todo.append((row, fingerprint, known))
    return out


def prepare_rows(rows: list, entity: str) -> list[tuple]:
    """Everything about the rows to decide that needs no database: for each, whether it
    is an organisation, its parsed and blind-indexed identifiers, its encrypted row and
    (people with a valid number) the ciphertexts of number and phone a new person gets.

    Pure CPU (identifier parsing, SM4-GCM, HMAC-SM3) and a function of the row alone, so
    worker processes can do it for batches ahead of the one being decided."""
    crypto = current_app.extensions["idp.fieldcrypto"]
    out = []
    for row in rows:
        blob = row_blob(row)
        if is_org_row(row, entity):
            out.append((True, prepare_org(row), blob, (None, None)))
            continue
        prep = prepare(row)
        sealed = (None, None)
        if prep.number:
            sealed = (crypto.encrypt(prep.number, ID_NUMBER),
                      crypto.encrypt(prep.phone, PHONE) if prep.phone else None)
        out.append((False, prep, blob, sealed))
    return out


def _prepare_packed(packed: list[tuple], entity: str) -> list[tuple]:
    """:func:`prepare_rows` in a worker, rows and results as plain tuples: pickling
    dataclasses costs the parent more than the work it hands off."""
    rows = [LegacyRow(**dict(zip(_ROW_KEYS, values, strict=True))) for values in packed]
    return [(is_org, tuple(getattr(prep, name) for name in type(prep).__slots__), blob, sealed)
            for is_org, prep, blob, sealed in prepare_rows(rows, entity)]


def _unpack(results: list[tuple]) -> list[tuple]:
    return [(is_org, (OrgPrepared if is_org else Prepared)(*prep), blob, sealed)
            for is_org, prep, blob, sealed in results]


def _decide_batch(source, read: _Read, prepared: list[tuple], summary: Summary,
                  rejects: RejectReport) -> None:
    """Match and write a batch read by :func:`_read_batch` (``prepared``: its todo rows
    through :func:`prepare_rows`)."""
    for line in read.rejects:
        rejects.add(*line)
    summary.read += read.read
    summary.repeated += read.repeated
    summary.unchanged += read.unchanged
    if not read.todo:
        return
    person_rows, org_rows = [], []
    for item, (is_org, prep, blob, sealed) in zip(read.todo, prepared, strict=True):
        (org_rows if is_org else person_rows).append((*item, prep, blob, sealed))
    out = _Batch(source, summary, time.time(), rejects)
    if person_rows:
        people = People([p[3] for p in person_rows])
        for row, fingerprint, known, prep, blob, sealed in person_rows:
            decision = decide(row, trusted=source.trusted, people=people, prep=prep)
            legacy_hash, problem = _legacy_hash(row)
            if problem:
                summary.password_rejected += 1
                rejects.add(row.where, "password", "imported without its password: " + problem,
                            row.legacy_id)
            person_id = out.person(row, prep, sealed, decision, legacy_hash, people)
            out.account(row, fingerprint, known, blob, decision, legacy_hash, person_id, None)
    if org_rows:
        from idp.orgs import registry

        orgs = Orgs([p[3] for p in org_rows])
        reg = registry()
        summary.organisations += len(org_rows)
        for row, fingerprint, known, prep, blob, _sealed in org_rows:
            decision = decide_org(row, prep, orgs, trusted=source.trusted, registry=reg)
            org_id = out.org(prep, decision, orgs)
            out.account(row, fingerprint, known, blob, decision, None, None, org_id)
    out.write()


def _flag_gone(source, summary: Summary, seen: _Seen) -> int:
    """Accounts of this source neither decided in this run nor read unchanged are gone.

    The read-unchanged ones are a subset of the accounts not decided in this run, so
    equal counts mean nothing is gone (the usual case, settled by one count). Otherwise
    the candidates are walked by primary key in pages: memory stays flat however large
    the source."""
    undecided = (LegacyAccount.source == source.name, LegacyAccount.state != "gone",
                 LegacyAccount.run_id != summary.run_id)
    if db.session.scalar(db.select(db.func.count()).select_from(LegacyAccount)
                         .where(*undecided)) == seen.count:
        return 0
    gone, last, page = 0, 0, 10_000
    while True:
        ids = db.session.scalars(db.select(LegacyAccount.id).where(
            *undecided, LegacyAccount.id > last).order_by(LegacyAccount.id).limit(page)).all()
        if not ids:
            return gone
        last = ids[-1]
        missing = [i for i in ids if i not in seen]
        if missing:
            db.session.execute(db.update(LegacyAccount).where(among(LegacyAccount.id, missing))
                               .values(state="gone"))
            gone += len(missing)


def _parallel_workers(workers: int | None, total: int | None) -> int:
    """Worker processes for :func:`prepare_rows`: ``workers`` as given (0: none, all in
    this process); ``None``: one per core for a source of at least
    :data:`PARALLEL_FROM` rows on a machine with several cores, else none."""
    if workers is not None:
        return max(0, workers)
    cores = os.cpu_count() or 1
    if cores < 2 or total is None or total < PARALLEL_FROM:
        return 0
    return cores if "fork" in mp.get_all_start_methods() else 0


def _worker_start(app) -> None:
    """In a forked worker: the app (and its loaded data keys) as the parent had them,
    and none of the parent's database connections."""
    app.app_context().push()
    db.engine.dispose(close=False)


class _Prepare:
    """Runs :func:`prepare_rows` in worker processes (``n`` > 0) or in this one."""

    def __init__(self, n: int, entity: str) -> None:
        self.entity, self.pool = entity, None
        if n:
            # Load the data keys now, so forked workers hold them and never need the
            # database themselves.
            current_app.extensions["idp.fieldcrypto"].blind_index("", "importer.warm-up")
            self.pool = mp.get_context("fork").Pool(
                n, _worker_start, (current_app._get_current_object(),))

    def submit(self, rows: list):
        if self.pool is None:
            return prepare_rows(rows, self.entity)
        packed = [tuple(getattr(row, name) for name in _ROW_KEYS) for row in rows]
        return self.pool.apply_async(_prepare_packed, (packed, self.entity))

    def result(self, handle) -> list[tuple]:
        return handle if self.pool is None else _unpack(handle.get())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def run_import(source, *, dry_run: bool = False, batch_size: int = BATCH_SIZE,
               progress: Callable[[Summary], None] | None = None,
               reject_report: str | None = None, workers: int | None = None) -> Summary:
    """Import ``source``; ``reject_report`` is the CSV file for rejected rows (written
    only when there is one; counts are kept either way).

    ``workers``: processes that parse, blind-index and encrypt rows (:func:`prepare_rows`)
    for the next batches while this process decides and writes the current one, in
    order and in the same transactions, so the outcome is row for row that of the
    serial run (0) — only sooner on several cores. ``None``: one per core for sources of
    at least :data:`PARALLEL_FROM` rows."""
    started = time.monotonic()
    summary = Summary(source=source.name, run_id=uuid.uuid4().hex, dry_run=dry_run)
    summary.total = source.total_hint() if hasattr(source, "total_hint") else None
    seen = _Seen()
    rejects = RejectReport(reject_report)
    unreadable: list[tuple] = []

    def skipped(error: RowError) -> None:
        unreadable.append((error.where, "unreadable", error.reason, error.legacy_id))

    def taken() -> list[tuple]:
        lines = unreadable[:]
        unreadable.clear()
        return lines

    n_workers = _parallel_workers(workers, summary.total)
    # Batches read ahead of the one being decided: enough to keep every worker busy,
    # and no more (memory stays that of a few batches).
    ahead = n_workers + 1 if n_workers else 0
    in_flight: deque[tuple[_Read, list, object]] = deque()
    pending: set[str] = set()  # legacy ids of batches read but not yet decided

    def decide_next(prep: _Prepare) -> None:
        read, ids, handle = in_flight.popleft()
        _decide_batch(source, read, prep.result(handle), summary, rejects)
        pending.difference_update(ids)
        if not dry_run:
            db.session.commit()
        summary.skipped_rows = read.skipped_rows
        if progress:
            progress(summary)

    previous_sink = getattr(source, "reject_sink", None)
    source.reject_sink = skipped
    prep = None
    try:
        prep = _Prepare(n_workers, getattr(source, "entity", "auto"))
        for batch in _batches(source.rows(), batch_size):
            read = _read_batch(source, batch, summary.run_id, seen, pending, taken())
            rows = [row for row, _fp, _held in read.todo]
            ids = [row.legacy_id for row in rows]
            pending.update(ids)
            in_flight.append((read, ids, prep.submit(rows)))
            while len(in_flight) > ahead:
                decide_next(prep)
        while in_flight:
            decide_next(prep)
        for line in taken():
            rejects.add(*line)
        summary.skipped_rows = getattr(source, "error_count", 0)
        summary.gone = _flag_gone(source, summary, seen)
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    except BaseException:
        # The batch in flight is undone as a whole; those before it stay committed.
        db.session.rollback()
        raise
    finally:
        if prep is not None:
            prep.close()
        source.reject_sink = previous_sink
        rejects.close()
    summary.rejected = rejects.total
    summary.rejects = dict(rejects.counts)
    summary.reject_report = rejects.written
    summary.seconds = round(time.monotonic() - started, 3)
    if not dry_run:
        audit.record("legacy.import", actor="system", details=summary.as_dict())
    return summary
