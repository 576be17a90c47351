"""The SM3-chained audit log: recording, chaining, tamper detection, masking,
concurrency, crashes, migration, CLI.

Runs on both backends (SQLite and PostgreSQL) through the ``ctx`` fixture."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import threading
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from idp import audit
from idp.audit import ZERO_HASH, AuditEvent, AuditPending, compute_hash, walk
from idp.audit import background as audit_background
from idp.audit import log as audit_log
from idp.extensions import db
from tests import backends
from tests.helpers import CITIZEN_ID, CITIZEN_PHONE

T = AuditEvent.__table__
P = AuditPending.__table__


@pytest.fixture
def actx(ctx):
    """``ctx`` with an empty audit log: nothing chained, nothing pending (entries other
    tests recorded are chained first, so no background pass can bring them back)."""
    audit.flush()
    db.session.execute(text("DELETE FROM audit_pending"))
    db.session.execute(text("DELETE FROM audit_event"))
    db.session.commit()
    return ctx


@pytest.fixture
def paused(actx, monkeypatch):
    """No opportunistic or background chaining: entries stay pending until flushed."""
    monkeypatch.setattr(audit_background, "ENABLED", False)
    return actx


def _chained() -> list[audit.Entry]:
    return [audit.Entry(**e) for e in audit.export(0)]


def _fill(n: int) -> list[audit.Entry]:
    """Record ``n`` entries; return the whole chain, which by then holds them."""
    kinds = ["login.success", "consent.granted", "token.issued", "token.revoked", "logout"]
    for i in range(n):
        audit.record(kinds[i % len(kinds)], actor=f"person{i % 3}", subject=f"person{i % 3}",
                     client_id="rp1", ip="203.0.113.7", details={"i": i, "scope": "openid"})
    return _chained()


def _exec(stmt) -> None:
    db.session.execute(stmt)
    db.session.commit()


def _row(seq: int) -> dict:
    return dict(db.session.execute(select(T).where(T.c.seq == seq)).mappings().one())


def _count() -> int:
    return db.session.execute(select(func.count()).select_from(T)).scalar_one()


def _pending() -> int:
    db.session.commit()  # a fresh snapshot on PostgreSQL
    return db.session.execute(select(func.count()).select_from(P)).scalar_one()


def _overrides(app) -> dict:
    """What another process (or app) needs to reach the same database."""
    keys = ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "KEK")
    return {"ISSUER": "http://localhost", **{k: app.config[k] for k in keys if app.config.get(k)}}


# -- a good chain ---------------------------------------------------------------------


def test_chain_of_events_verifies(actx):
    entries = _fill(30)
    result = audit.verify()
    assert result.ok and result.count == 30 and result.first_bad_seq is None
    assert result.pending == 0 and result.as_dict()["pending"] == 0
    assert [e.details["i"] for e in entries] == list(range(30))  # in the order recorded
    assert (result.head_seq, result.head_hash) == audit.head() == (30, entries[-1].hash)
    assert entries[0].prev_hash == ZERO_HASH
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.seq == before.seq + 1 and after.prev_hash == before.hash
        assert after.ts >= before.ts
    assert _row(7)["hash"] == entries[6].hash  # what record() returned is what is stored


def test_canonical_form_is_as_documented(actx):
    """Rebuild the hashed bytes by hand, as an operator's own tool would, with SM3 from
    hashlib (OpenSSL) rather than the project's helper."""
    audit.record("admin.user.add", actor="cli:root", subject="p1",
                 details={"角色": "管理员", "b": [1, 2.5, None, True], "a": {"z": 1, "y": ""}})
    (e,) = _chained()
    obj = {"actor": "cli:root", "client_id": None, "details": e.details, "event": "admin.user.add",
           "ip": None, "prev_hash": "0" * 64, "seq": 1, "subject": "p1", "ts": e.ts}
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert raw.startswith('{"actor":"cli:root","client_id":null,"details":{"a":{"y":"","z":1},'
                          '"b":[1,2.5,null,true],"角色":"管理员"},"event":"admin.user.add",')
    assert hashlib.new("sm3", raw.encode("utf-8")).hexdigest() == e.hash
    assert e.ts == round(e.ts, 6)


def test_awkward_values_survive_the_database_round_trip(actx):
    import datetime
    import uuid

    audit.record("token.issued", actor="rp1", client_id="rp1", details={
        "f": 0.1, "neg": -0.0, "big": 2**62, "huge": 2**70, "nan": float("nan"),
        "nul": "a\x00b", "u": "é\u2028\U0001f600", "set": {"b", "a"}, "t": (1, 2),
        "when": datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC), "id": uuid.UUID(int=1),
        3: "int key", "deep": {"b": {"a": [{"x": None}]}},
    })
    audit.flush()
    stored = _row(1)["details"]
    assert stored["nan"] == "nan" and stored["nul"] == "a\ufffdb" and stored["3"] == "int key"
    assert stored["set"] == ["a", "b"] and stored["t"] == [1, 2]
    assert audit.verify().ok


def test_invalid_calls(actx):
    for bad in ["", "Login.Success", "login success", "1login", "x" * 65, "登录"]:
        with pytest.raises(ValueError):
            audit.record(bad, actor="system")
    with pytest.raises(ValueError):
        audit.record("logout", actor="")
    with pytest.raises(TypeError):
        audit.record("logout", actor="system", details=["not", "a", "mapping"])
    assert _count() == 0 and _pending() == 0


# -- tampering ------------------------------------------------------------------------


def test_altered_details_value(actx):
    _fill(10)
    _exec(update(T).where(T.c.seq == 4).values(details={"i": 999, "scope": "openid"}))
    r = audit.verify()
    assert not r.ok and r.first_bad_seq == 4 and r.count == 3
    assert "entry 4 was altered" in r.reason and r.head_seq == 3


def test_altered_and_rehashed_entry(actx):
    _fill(10)
    row = _row(4)
    row["details"] = {"i": 999}
    _exec(update(T).where(T.c.seq == 4).values(details=row["details"], hash=compute_hash(row)))
    r = audit.verify()
    assert not r.ok and r.first_bad_seq == 4 and r.count == 3
    assert "entry 4 was replaced" in r.reason


def test_deleted_middle_row(actx):
    _fill(10)
    _exec(delete(T).where(T.c.seq == 5))
    r = audit.verify()
    assert not r.ok and r.first_bad_seq == 5 and r.count == 4
    assert r.reason.startswith("entry 5 missing (deleted)")
    _exec(delete(T).where(T.c.seq.in_([6, 7])))
    assert audit.verify().reason.startswith("entries 5-7 missing (deleted)")


def test_deleted_first_row(actx):
    _fill(5)
    _exec(delete(T).where(T.c.seq == 1))
    r = audit.verify()
    assert not r.ok and r.first_bad_seq == 1 and "entry 1 missing" in r.reason


def test_deleted_last_row_needs_an_external_head(actx):
    _fill(10)
    anchor = audit.head()
    _exec(delete(T).where(T.c.seq == 10))
    # Without an anchor a shorter chain is a valid chain: truncation is invisible.
    alone = audit.verify()
    assert alone.ok and alone.count == 9
    r = audit.verify(expected_head=anchor)
    assert not r.ok and r.first_bad_seq == 10 and "truncated" in r.reason and r.count == 9


def test_rewritten_tail_needs_an_external_head(actx):
    _fill(10)
    anchor = audit.head()
    _exec(delete(T).where(T.c.seq >= 9))
    audit.record("logout", actor="intruder")
    audit.record("logout", actor="intruder")
    assert audit.verify().ok  # rebuilt with valid hashes: only the anchor shows it
    r = audit.verify(expected_head=anchor)
    assert not r.ok and r.first_bad_seq == 10 and "recorded head" in r.reason


def test_inserted_forged_row(actx):
    _fill(10)
    for seq in range(10, 5, -1):  # make room at 6, one row at a time (unique seq)
        _exec(update(T).where(T.c.seq == seq).values(seq=seq + 1))
    forged = {"seq": 6, "ts": _row(5)["ts"], "event": "consent.granted", "actor": "person1",
              "subject": "person1", "client_id": "evil", "ip": None, "details": {},
              "prev_hash": _row(5)["hash"]}
    forged["hash"] = compute_hash(forged)  # the forger knows the algorithm
    # prev_hash is unique: the forger has to re-link the displaced entry to the forgery.
    with pytest.raises(IntegrityError):
        _exec(insert(T).values(**forged))
    db.session.rollback()
    _exec(update(T).where(T.c.seq == 7).values(prev_hash=forged["hash"]))
    _exec(insert(T).values(**forged))
    r = audit.verify()
    assert not r.ok and r.first_bad_seq == 6 and r.count == 5
    assert "entry 6 was inserted" in r.reason


def test_deleted_row_with_later_entries_renumbered(actx):
    _fill(8)
    _exec(delete(T).where(T.c.seq == 4))
    for seq in range(5, 9):
        _exec(update(T).where(T.c.seq == seq).values(seq=seq - 1))
    r = audit.verify()
    assert not r.ok and r.first_bad_seq == 4 and "entry 4 was deleted" in r.reason


def test_inserted_row_before_the_first(actx):
    _fill(3)
    forged = {"seq": 0, "ts": 0.0, "event": "logout", "actor": "x", "subject": None,
              "client_id": None, "ip": None, "details": {}, "prev_hash": "f" * 64}
    forged["hash"] = compute_hash(forged)
    _exec(insert(T).values(**forged))
    r = audit.verify()
    assert not r.ok and r.first_bad_seq == 0 and "inserted" in r.reason


def test_appended_row_with_a_made_up_hash(actx):
    entries = _fill(3)
    _exec(insert(T).values(seq=4, ts=time.time(), event="logout", actor="x", details={},
                           prev_hash=entries[-1].hash, hash="a" * 64))
    r = audit.verify()
    assert not r.ok and r.first_bad_seq == 4 and "altered" in r.reason


@pytest.mark.parametrize("a, b", [(3, 7), (4, 5)])
def test_swapped_rows(actx, a, b):
    _fill(10)
    _exec(update(T).where(T.c.seq == a).values(seq=-1))
    _exec(update(T).where(T.c.seq == b).values(seq=a))
    _exec(update(T).where(T.c.seq == -1).values(seq=b))
    r = audit.verify()
    assert not r.ok and r.first_bad_seq == a and r.count == a - 1
    assert f"entry {a} is out of order (reordered)" in r.reason


# -- masking --------------------------------------------------------------------------


def test_personal_data_is_masked_before_it_is_stored(paused):
    e = audit.record(
        "login.failure", actor="system", subject=CITIZEN_ID, client_id="rp1",
        details={"username": CITIZEN_ID, "phone": CITIZEN_PHONE, "name": "李四",
                 "note": f"用户 {CITIZEN_ID} 手机 +86 {CITIZEN_PHONE} 登录失败",
                 "nested": [{"mobile": "139 1234 5678"}, {"姓名": "欧阳娜娜"}],
                 "typo": {"id_number": CITIZEN_ID[:17]}, "password": "Correct-Horse-9",
                 CITIZEN_PHONE: "a phone as a key"})
    secrets = [CITIZEN_ID, CITIZEN_ID[:17], "19491231", CITIZEN_PHONE, "1234 5678", "李四",
               "欧阳娜娜", "Correct-Horse-9"]
    # Masked before it is written at all: the pending row holds no personal data either.
    waiting = db.session.execute(
        text("SELECT CAST(details AS TEXT), subject, actor FROM audit_pending")).one()
    assert not [x for x in secrets if x in " ".join(waiting)]
    assert e.details == json.loads(waiting[0]) and e.subject == waiting[1]
    db.session.commit()
    audit.flush()
    raw = db.session.execute(
        text("SELECT CAST(details AS TEXT), subject, actor FROM audit_event")).one()
    stored = _row(1)["details"]
    everything = " ".join([json.dumps(stored, ensure_ascii=False), *raw[0:1], raw[1], raw[2]])
    for secret in secrets:
        assert secret not in everything, secret
    assert stored == e.details
    assert e.subject == "110105********002X" == raw[1]
    assert stored["username"] == "110105********002X" and stored["phone"] == "139****5678"
    assert stored["name"] == "李*" and stored["nested"][1]["姓名"] == "欧***"
    assert stored["note"] == "用户 110105********002X 手机 +86 139****5678 登录失败"
    assert stored["nested"][0]["mobile"] == "139 **** 5678"
    assert stored["typo"]["id_number"] == "110105*******1002"
    assert stored["password"] == "[REDACTED]" and "139****5678" in stored
    assert audit.verify().ok


def test_identifiers_are_not_mangled():
    from idp.audit import mask_identifier

    internal = "ab13912345678cd0123456789abcdef0"  # a phone-like run inside a random id
    assert mask_identifier(internal) == internal
    assert mask_identifier("cli:root") == "cli:root"
    assert mask_identifier("139-1234-5678") == "139-****-5678"
    assert mask_identifier("110105194912310021") == "110105********0021"


# -- transactions ---------------------------------------------------------------------


def test_audit_entry_survives_the_request_rollback(actx):
    from idp.models import Consent

    db.session.add(Consent(person_id="p1", client_id="rp1", scopes="openid"))  # not flushed
    audit.record("consent.granted", actor="p1", subject="p1", client_id="rp1")
    db.session.rollback()
    assert db.session.execute(text("SELECT count(*) FROM consent")).scalar_one() == 0
    assert audit.head()[0] == 1 and _chained()[0].actor == "p1"

    db.session.add(Consent(person_id="p2", client_id="rp1", scopes="openid"))
    db.session.flush()  # the request now holds a write
    if db.engine.dialect.name == "sqlite":
        started = time.monotonic()
        with pytest.raises(audit.AuditError, match="commit first"):
            audit.record("consent.granted", actor="p2")
        assert time.monotonic() - started < 5  # refused at once, not after busy_timeout
        db.session.rollback()
        assert audit.head()[0] == 1 and _pending() == 0
    else:
        audit.record("consent.granted", actor="p2")
        assert audit.flush() in (0, 1)  # chains beside the open request transaction
        db.session.rollback()
        assert audit.head()[0] == 2 and _chained()[1].actor == "p2"
    assert db.session.execute(text("SELECT count(*) FROM consent")).scalar_one() == 0
    assert audit.verify().ok


def test_record_is_durable_at_once_and_chained_later(paused):
    p = audit.record("login.failure", actor="anonymous", client_id="rp1", ip="198.51.100.4",
                     details={"username": CITIZEN_ID, "reason": "bad_credentials"})
    assert isinstance(p, audit.Pending) and p.id >= 1 and p.ts == round(p.ts, 6)
    assert p.details == {"username": "110105********002X", "reason": "bad_credentials"}
    assert _pending() == 1 and _count() == 0 and audit.pending_count() == 1
    assert audit.chain_pending() == 1
    assert _pending() == 0 and audit.chain_pending() == 0
    (e,) = _chained()
    assert (e.seq, e.prev_hash, e.ts, e.details, e.ip) == (1, ZERO_HASH, p.ts, p.details,
                                                            "198.51.100.4")


def test_verify_export_and_head_include_what_was_just_recorded(paused):
    for i in range(4):
        audit.record("logout", actor=f"p{i}")
    assert _count() == 0  # nothing chains them in the background while paused
    r = audit.verify()
    assert r.ok and r.count == 4 and r.pending == 0 and _pending() == 0
    audit.record("logout", actor="p4")
    assert [x["actor"] for x in audit.export(0)] == [f"p{i}" for i in range(5)]
    audit.record("logout", actor="p5")
    seq, digest = audit.head()
    assert seq == 6 and digest == _row(6)["hash"] and _row(6)["actor"] == "p5"
    assert audit.flush() == 0


def test_chain_ts_never_goes_back(paused):
    first = audit.record("logout", actor="a")
    second = audit.record("logout", actor="b")
    # A worker with a slow clock (or an insert that committed late) recorded an older ts.
    _exec(update(P).where(P.c.id == second.id).values(ts=first.ts - 5))
    a, b = _chained()
    assert b.ts == a.ts == first.ts and audit.verify().ok


def test_verify_reports_pending_entries_it_could_not_chain(paused, monkeypatch):
    _fill(2)
    audit.record("logout", actor="late1")
    audit.record("logout", actor="late2")

    def broken(**_kw):
        raise audit.AuditError("simulated")

    real = audit_log.flush
    monkeypatch.setattr(audit_log, "flush", broken)
    r = audit.verify()
    assert r.ok and r.count == 2 and r.pending == 2 and r.as_dict()["pending"] == 2
    monkeypatch.setattr(audit_log, "flush", real)
    if db.engine.dialect.name == "sqlite":
        # The real case: this thread holds SQLite's write lock, chaining would deadlock.
        from idp.models import Consent

        db.session.add(Consent(person_id="p1", client_id="rp1", scopes="openid"))
        db.session.flush()
        started = time.monotonic()
        r = audit.verify()
        assert r.ok and r.count == 2 and r.pending == 2 and time.monotonic() - started < 5
        with pytest.raises(audit.AuditError, match="commit first"):
            audit.flush()
        db.session.rollback()
    r = audit.verify()
    assert r.ok and r.count == 4 and r.pending == 0


# -- concurrency ----------------------------------------------------------------------


def _assert_no_fork(n: int) -> None:
    result = audit.verify()
    assert result.ok, result.reason
    assert result.count == n and result.pending == 0
    db.session.commit()
    seqs = db.session.execute(select(T.c.seq).order_by(T.c.seq)).scalars().all()
    assert seqs == list(range(1, n + 1))
    links = db.session.execute(select(func.count(func.distinct(T.c.prev_hash)))).scalar_one()
    assert links == n
    ts = db.session.execute(select(T.c.ts).order_by(T.c.seq)).scalars().all()
    assert ts == sorted(ts)
    assert _pending() == 0


def _each_once(rows, expected: dict[str, int]) -> None:
    """Every (actor, i) recorded appears exactly once in the chain."""
    seen = [(r.actor, r.details["i"]) for r in rows]
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted((a, i) for a, n in expected.items() for i in range(n))


def test_concurrent_threads_make_one_chain(actx):
    threads, per_thread = 8, 60
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []
    done = threading.Event()

    def work(tag: int) -> None:
        try:
            with actx.app_context():
                barrier.wait()
                for i in range(per_thread):
                    audit.record("token.issued", actor=f"thread{tag}", details={"i": i})
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def flusher() -> None:  # a blocking chainer racing the opportunistic ones
        try:
            with actx.app_context():
                barrier.wait()
                while not done.is_set():
                    audit.flush()
                    time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    watcher = threading.Thread(target=flusher)
    for t in [*pool, watcher]:
        t.start()
    for t in pool:
        t.join(120)
    done.set()
    watcher.join(60)
    assert not errors, errors
    _assert_no_fork(threads * per_thread)
    _each_once(_chained(), {f"thread{t}": per_thread for t in range(threads)})


def _append_in_process(config: dict, barrier, tag: int, n: int, threads: int) -> None:
    from idp import create_app

    app = create_app(config["overrides"], instance_path=config["instance_path"])

    def work(k: int) -> None:
        with app.app_context():
            for i in range(k, n, threads):
                audit.record("login.success", actor=f"proc{tag}", details={"i": i})

    with app.app_context():
        barrier.wait(60)
        pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    # Exits with entries possibly pending: the exit drain, another process's pass or the
    # parent's flush chains them.


def test_concurrent_processes_make_one_chain(actx):
    procs, per_proc = 4, 60
    config = {"overrides": _overrides(actx), "instance_path": actx.instance_path}
    mp = multiprocessing.get_context("spawn")
    barrier = mp.Barrier(procs)
    pool = [mp.Process(target=_append_in_process, args=(config, barrier, p, per_proc, 3))
            for p in range(procs)]
    for p in pool:
        p.start()
    for p in pool:
        p.join(180)
    assert [p.exitcode for p in pool] == [0] * procs
    _assert_no_fork(procs * per_proc)
    _each_once(_chained(), {f"proc{p}": per_proc for p in range(procs)})


def test_background_thread_chains_without_being_asked(actx):
    for i in range(5):
        audit.record("logout", actor="bg", details={"i": i})
    deadline = time.monotonic() + 10
    while (_count() < 5 or _pending()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _count() == 5 and _pending() == 0  # no flush, verify, head or export called
    thread = audit_background.chainer().thread
    assert thread is not None and thread.daemon and thread.is_alive()
    _assert_no_fork(5)


def test_a_forked_worker_gets_its_own_chainer(actx):
    """gunicorn forks its workers: state (thread, locks) made before the fork is not the
    child's; the child starts its own chainer lazily at its first record."""
    audit.record("logout", actor="parent")
    parent = audit_background.chainer()
    assert parent.thread is not None and parent.thread.is_alive()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        status = 1
        try:
            db.engine.dispose(close=False)  # the parent's pooled connections are not ours
            for i in range(5):
                audit.record("logout", actor="child", details={"i": i})
            mine = audit_background.chainer()
            deadline = time.monotonic() + 10
            while audit.pending_count() and time.monotonic() < deadline:
                time.sleep(0.05)
            ok = (mine is not parent and mine.pid == os.getpid() and mine.thread is not None
                  and mine.thread.is_alive() and audit.pending_count() == 0)
            status = 0 if ok else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert audit_background.chainer() is parent
    _assert_no_fork(6)


def test_chainer_never_waits_for_a_held_chain_lock(paused, monkeypatch):
    if db.engine.dialect.name == "sqlite":
        # SQLite's chain lock is its one write lock, so inserts must wait for it; what
        # must not wait is the opportunistic chaining pass in the request thread.
        audit.record("token.issued", actor="rp1")
        assert _pending() == 1
        with db.engine.connect() as holder:
            holder.exec_driver_sql("BEGIN IMMEDIATE")
            started = time.monotonic()
            assert audit.chain_pending() == 0
            assert time.monotonic() - started < 1
            holder.rollback()
        assert audit.flush() == 1
        return
    with db.engine.connect() as holder:
        assert audit_log.lock_chain(holder, wait=True)  # another chainer, mid-pass (or hung)
        started = time.monotonic()
        for i in range(20):
            audit.record("token.issued", actor="rp1", details={"i": i})
        assert audit.chain_pending() == 0  # the try-lock skips, it does not wait
        assert time.monotonic() - started < 2
        assert _count() == 0 and _pending() == 20
        # verify() waits for the lock, but not for ever: then it says what it left out.
        monkeypatch.setattr(audit_log, "FLUSH_LOCK_TIMEOUT", "300ms")
        r = audit.verify()
        assert r.ok and r.count == 0 and r.pending == 20
        holder.rollback()
    assert audit.flush() == 20
    _assert_no_fork(20)


# -- crashes --------------------------------------------------------------------------


def test_failure_while_chaining_leaves_every_entry_pending(paused, monkeypatch):
    _fill(3)
    for i in range(5):
        audit.record("token.issued", actor="rp1", details={"i": i})
    real = audit_log._store

    def store_then_fail(conn, entries):
        real(conn, entries)  # inserted into audit_event, deleted from pending …
        raise RuntimeError("power cut")  # … and never committed

    monkeypatch.setattr(audit_log, "_store", store_then_fail)
    with pytest.raises(RuntimeError):
        audit.flush()
    assert _count() == 3 and _pending() == 5
    monkeypatch.setattr(audit_log, "_store", real)
    assert audit.flush() == 5
    _assert_no_fork(8)


def _crash_while_chaining(config: dict, n: int) -> None:
    from idp import create_app

    audit_background.ENABLED = False
    app = create_app(config["overrides"], instance_path=config["instance_path"])
    with app.app_context():
        for i in range(n):
            audit.record("token.issued", actor="crasher", details={"i": i})
        real = audit_log._store

        def store_then_die(conn, entries):
            real(conn, entries)
            os._exit(17)  # no rollback, no commit, no atexit: the process just dies

        audit_log._store = store_then_die
        audit.flush()


def test_crash_between_pending_and_chain_then_a_new_app_chains_each_once(actx):
    from idp import create_app

    _fill(2)
    config = {"overrides": _overrides(actx), "instance_path": actx.instance_path}
    proc = multiprocessing.get_context("spawn").Process(target=_crash_while_chaining,
                                                        args=(config, 7))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 17
    assert _count() == 2 and _pending() == 7  # the half-done chaining left no trace

    restarted = create_app(config["overrides"], instance_path=config["instance_path"])
    with restarted.app_context():
        r = audit.verify()  # drains what the dead process left
        assert r.ok and r.count == 9 and r.pending == 0
        db.session.remove()
        db.engine.dispose()
    _assert_no_fork(9)
    _each_once(_chained()[2:], {"crasher": 7})


# -- export and offline verification --------------------------------------------------


def test_an_export_verifies_on_its_own(actx):
    entries = _fill(12)
    lines = [audit.export_line(e) for e in audit.export(entries[4].ts)]
    parsed = [json.loads(line) for line in lines]
    assert [p["seq"] for p in parsed] == list(range(5, 13))
    ok = walk(parsed, start=(4, entries[3].hash))
    assert ok.ok and ok.count == 8 and ok.head_hash == entries[-1].hash
    parsed[2]["actor"] = "someone else"
    assert walk(parsed, start=(4, entries[3].hash)).first_bad_seq == 7
    parsed[2]["actor"] = entries[6].actor
    # A file has no unique constraints: a line slipped in and the later ones renumbered.
    forged = {**parsed[3], "actor": "forger", "prev_hash": parsed[2]["hash"]}
    forged["hash"] = compute_hash(forged)
    tampered = parsed[:3] + [forged] + [{**p, "seq": p["seq"] + 1} for p in parsed[3:]]
    r = walk(tampered, start=(4, entries[3].hash))
    assert not r.ok and r.first_bad_seq == 8 and "entry 8 was inserted" in r.reason


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_shell_recipe_from_the_docs(actx):
    audit.record("login.success", actor="p1", details={"event": "x", "hash": "0" * 64})
    (e,) = _chained()
    line = e.export_line()
    canonical = subprocess.run(
        ["sed", "-E", r's/^(.*"event":"[^"]*"),"hash":"[0-9a-f]{64}"/\1/'],
        input=line.encode(), capture_output=True, check=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sm3", "-r"], input=canonical,
                            capture_output=True, check=True).stdout.split()[0].decode()
    assert digest == e.hash


def test_migration_matches_the_model(actx):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert [d for d in diffs if "audit_" in repr(d)] == []


@pytest.fixture
def fresh_db(actx, tmp_path):
    """A new, empty database of the current backend, and an app on it."""
    from idp import create_app

    overrides = {"ISSUER": "http://localhost", "KEK": "11" * 32}
    name = None
    if actx.config["DATABASE_URL"].startswith("postgresql"):
        name, overrides["DATABASE_URL"] = backends.create_pg_database()
    app = create_app(overrides, instance_path=str(tmp_path / "fresh"))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if name:
        backends.drop_pg_database(name)


def test_migration_downgrade_chains_pending_entries_first(fresh_db, monkeypatch):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect

    monkeypatch.setattr(audit_background, "ENABLED", False)
    with fresh_db.app_context():
        directory = fresh_db.extensions["migrate"].directory
        upgrade(directory=directory)
        assert "audit_pending" in inspect(db.engine).get_table_names()
        audit.record("logout", actor="a")
        audit.flush()
        for actor in ("b", "c"):
            audit.record("logout", actor=actor)
        assert audit.pending_count() == 2
        db.session.commit()

        downgrade(directory=directory, revision="0003_pii")
        assert "audit_pending" not in inspect(db.engine).get_table_names()
        rows = db.session.execute(select(T.c.seq, T.c.actor).order_by(T.c.seq)).all()
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b"), (3, "c")]
        db.session.commit()

        upgrade(directory=directory)
        r = audit.verify()
        assert r.ok and r.count == 3 and audit.pending_count() == 0


# -- CLI ------------------------------------------------------------------------------


@pytest.fixture
def cli(actx, tmp_path, monkeypatch):
    """``idp`` in a fresh instance directory: a new SQLite file, or the test PostgreSQL
    database on the pg backend. Returns (run, app_context)."""
    from idp.cli import app_context, main
    from idp.cli.audit import audit as audit_group

    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("IDP_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("IDP_ARGON2_MEMORY_COST", "8192")
    for var in ("DATABASE_URL", "REDIS_URL", "IDP_DATABASE_URL", "IDP_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    if actx.config.get("REDIS_URL"):
        monkeypatch.setenv("DATABASE_URL", actx.config["DATABASE_URL"])
        monkeypatch.setenv("REDIS_URL", actx.config["REDIS_URL"])
        monkeypatch.setenv("IDP_REDIS_PREFIX", actx.config["REDIS_PREFIX"])
        monkeypatch.setenv("IDP_KEK", actx.config["KEK"])
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--json"], catch_exceptions=False).exit_code == 0

    def run(*args):
        return runner.invoke(audit_group, list(args), catch_exceptions=False)

    return run, app_context


def test_cli_verify(cli):
    run, app_context = cli
    with app_context():
        _fill(6)
    res = run("verify", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["count"] == 6 and out["first_bad_seq"] is None
    text_out = run("verify")
    assert text_out.exit_code == 0 and text_out.stdout.startswith("ok: 6 entries verified")

    head = run("head").stdout.strip()
    assert head == f"{out['head']['seq']}:{out['head']['hash']}"
    assert json.loads(run("head", "--json").stdout) == out["head"]
    assert run("verify", "--expected-head", head).exit_code == 0

    with app_context():
        _exec(update(T).where(T.c.seq == 3).values(details={"i": 0}))
    bad = run("verify")
    assert bad.exit_code == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "entry 3 was altered" in bad.stderr
    bad_json = run("verify", "--json")
    assert bad_json.exit_code == 1
    assert json.loads(bad_json.stdout)["first_bad_seq"] == 3
    assert "entry 3 was altered" in json.loads(bad_json.stderr)["error"]

    with app_context():
        _exec(update(T).where(T.c.seq == 3).values(details={"i": 2, "scope": "openid"}))
        _exec(delete(T).where(T.c.seq == 6))
    assert run("verify").exit_code == 0
    cut = run("verify", "--expected-head", head)
    assert cut.exit_code == 1 and "truncated" in cut.stderr
    wrong = run("verify", "--expected-head", "six:abc")
    assert wrong.exit_code == 1 and "SEQ:HASH" in wrong.stderr and "Traceback" not in wrong.stderr


def test_cli_export(cli):
    run, app_context = cli
    with app_context():
        entries = _fill(8)
    res = run("export", "--since", "0")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 8
    parsed = [json.loads(line) for line in lines]
    assert walk(parsed).ok  # the receiver re-verifies from seq, hash and prev_hash
    for line, entry in zip(parsed, entries, strict=True):
        assert line["hash"] == entry.hash == compute_hash(line)
        assert set(line) == {"seq", "ts", "event", "actor", "subject", "client_id", "ip",
                             "details", "prev_hash", "hash"}

    iso = run("export", "--since", "1970-01-01T08:00:00+08:00", "--json")
    assert iso.stdout == res.stdout
    since, until = entries[2].ts, entries[5].ts
    part = run("export", "--since", repr(since), "--until", repr(until)).stdout.splitlines()
    assert [json.loads(x)["seq"] for x in part] == [e.seq for e in entries
                                                    if since <= e.ts < until]
    assert run("export", "--since", "2999-01-01").stdout == ""
    for bad in [["--since", "yesterday"], ["--since", "10", "--until", "5"]]:
        out = run("export", *bad)
        assert out.exit_code == 1 and out.stderr.count("\n") == 1, out.stderr
        assert "Traceback" not in out.stderr
    assert json.loads(run("export", "--since", "x", "--json").stderr)["error"]


def test_cli_flush(cli, monkeypatch):
    run, app_context = cli
    monkeypatch.setattr(audit_background, "ENABLED", False)
    with app_context():
        for i in range(3):
            audit.record("logout", actor="p", details={"i": i})
        assert audit.pending_count() == 3
    out = run("flush", "--json")
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout) == {"chained": 3, "pending": 0}
    assert run("flush").stdout.strip() == "chained 0 entries; 0 pending"
    assert run("verify").stdout.startswith("ok: 3 entries verified")

    with app_context():
        audit.record("logout", actor="q")

    def stuck(**_kw):
        raise audit.AuditError("simulated: the chain lock is held by a hung process")

    real = audit_log.flush
    monkeypatch.setattr(audit_log, "flush", stuck)
    res = run("verify")  # intact, but one entry is not protected yet: exit 3
    assert res.exit_code == 3 and res.stdout.startswith("ok: 3 entries verified")
    assert "1 recorded entries could not be chained" in res.stderr
    res = run("verify", "--json")
    assert res.exit_code == 3 and json.loads(res.stdout)["pending"] == 1
    monkeypatch.setattr(audit_log, "flush", real)
    assert run("verify").stdout.startswith("ok: 4 entries verified")
