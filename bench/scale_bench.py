"""A province's worth of people: look-ups, sign-in and token issuance at 10k and at 10M
persons, bytes per person in PostgreSQL and bytes per SSO session in Redis.

    .venv/bin/python bench/scale_bench.py --stages 10000,10000000      # hours on 2 cores
    .venv/bin/python bench/scale_bench.py --smoke                      # seconds

One database (``--db``, default ``idp_scale``) is grown stage by stage: the first stage
is seeded into the migrated, indexed schema; a stage that adds more than ``--bulk-over``
rows drops the person table's secondary indexes and primary key, COPYs, and builds them
again with the very definitions the migrations made (what a bulk load does; the schema
afterwards is identical, which the bench checks). ``--resume`` continues an interrupted
seed of the same database (chunks commit in order, so the row count is the next index).

Rows are written exactly as production writes them: every person's ID number and
phone SM4-GCM encrypted and HMAC-SM3 blind-indexed through the app's own
``idp.models`` helpers and field crypto (worker processes each build the app on the
same database and KEK, so they hold the same data keys), COPYed in by the parent.
ID numbers are GB 11643 numbers with real county codes, birth dates 1935–2008, sequence
codes and MOD 11-2 check characters, plus 0.6 % Hong Kong/Macao/Taiwan residence
permits (810000/820000/830000) and 0.1 % 2023 foreigner permanent-residence cards; all
unique, as are the mainland mobile numbers (one per person). Both are a pure function
of the person's index, so the bench can look any seeded person up again.

Password hashes: sampled accounts (every 50th of the first 10,000 and every 50,000th
overall) get their own real Argon2id hash with the app's parameters; every other person
shares one precomputed Argon2id hash of a random password (its bytes are the same size,
so the storage figures hold).

Measured at each stage, through the product's own code:

* ``person_by_identifier`` (idp.accounts: the look-up sign-in, counters and the CLI
  use) for ID numbers and phones typed in varied forms, hits and misses: p50/p99;
* password sign-in (``POST /login`` through the Flask test client, a new browser and
  client address for each) and the authorization-code exchange (``POST /token``):
  p50/p99 — the sign-in is Argon2id-bound, so compare it with the hash alone (printed);
* PostgreSQL bytes per person (``pg_total_relation_size('person')``, table and indexes
  separately) and the plan of both look-ups (EXPLAIN ANALYZE);
* Redis bytes per SSO session: sessions made by ``idp.authn.session.start`` (and the
  record of one relying party, ``add_client``), measured by MEMORY USAGE of every key
  they made and by the INFO used_memory delta, and the projection for 1,000,000.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Real county-level address codes (GB/T 2260), a few per province-level division.
COUNTIES = (
    "110101 110102 110105 110106 110108 110114 120101 120103 120104 120116 130102 130104 "
    "130602 131002 140105 140106 150102 150203 210102 210202 210302 220102 220104 230102 "
    "230103 310101 310104 310105 310112 310115 320102 320106 320205 320506 320583 330106 "
    "330108 330203 330282 340102 340104 350102 350203 360102 370102 370202 371002 410105 "
    "410302 420102 420111 430102 430104 440103 440106 440304 440305 441900 442000 450102 "
    "460105 500103 500106 510104 510107 520102 530102 540102 610103 610113 620102 630102 "
    "640104 650102 710000").split()
HMT = ("810000", "820000", "830000")
# 2023 foreigner card: 9 + issuing mainland province + numeric nationality code.
FOREIGN = tuple(f"9{prov}{nat}" for prov in ("11", "31", "44", "32", "33", "51")
                for nat in ("840", "410", "392", "643", "704", "276", "250", "826"))
FIRST_BIRTH = dt.date(1935, 1, 1)
DAYS = (dt.date(2008, 12, 31) - FIRST_BIRTH).days + 1
MOBILE = ("130 131 132 133 134 135 136 137 138 139 145 147 150 151 152 153 155 156 157 158 "
          "159 166 170 171 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 "
          "198 199").split()
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘"
            "于蒋蔡余杜")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧巧美淑惠珠翠雅芝玉萍红娥玲芬燕彩春菊兰"
         "凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎")
CHUNK = 20_000
PASSWORD_SAMPLE_SMALL = 50  # every 50th of the first 10,000 persons …
PASSWORD_SAMPLE_LARGE = 50_000  # … and every 50,000th overall have real hashes


def _coprime(modulus: int, start: int) -> int:
    a = start
    while math.gcd(a, modulus) != 1:
        a += 2
    return a


def _kind_space(regions: tuple[str, ...]) -> tuple[tuple[str, ...], int, int]:
    modulus = len(regions) * DAYS * 1000
    return regions, modulus, _coprime(modulus, 2_654_435_761)


_SPACES = {"resident": _kind_space(tuple(COUNTIES)), "hmt_permit": _kind_space(HMT),
           "foreigner_permanent": _kind_space(FOREIGN)}
_DATES: list[str] = []


def _date(day: int) -> str:
    if not _DATES:
        _DATES.extend((FIRST_BIRTH + dt.timedelta(days=d)).strftime("%Y%m%d")
                      for d in range(DAYS))
    return _DATES[day]


def kind_of(i: int) -> tuple[str, int]:
    """(kind, index among the persons of that kind) of person ``i``."""
    block, r = divmod(i, 1000)
    if r < 6:
        return "hmt_permit", block * 6 + r
    if r == 6:
        return "foreigner_permanent", block
    return "resident", block * 993 + r - 7


def id_number_of(i: int) -> str:
    """Person ``i``'s ID number: a bijection of ``i`` within its kind's number space, so
    numbers never repeat."""
    from idp.identity import compute_check_char

    kind, m = kind_of(i)
    regions, modulus, mult = _SPACES[kind]
    j = (m * mult + 7_919) % modulus
    j, region = divmod(j, len(regions))
    seq, day = divmod(j, DAYS)
    body = f"{regions[region]}{_date(day)}{seq:03d}"
    return body + compute_check_char(body)


def phone_of(i: int) -> str:
    suffix = (i * 48_271 + 12_345) % 100_000_000  # a bijection of i below 10^8
    return MOBILE[(i * 7_919) % len(MOBILE)] + f"{suffix:08d}"


def has_own_password(i: int) -> bool:
    return (i < 10_000 and i % PASSWORD_SAMPLE_SMALL == 25) or i % PASSWORD_SAMPLE_LARGE == 25_025


def password_of(i: int) -> str:
    return f"Scale-{i}-Pw!"


def _name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


# -- seeding ------------------------------------------------------------------------

_W: dict = {}


def _worker_init(overrides: dict, instance: str, shared_hash: str, columns: list[str]) -> None:
    from idp import create_app

    app = create_app(overrides, instance_path=instance)
    ctx = app.app_context()
    ctx.push()
    _W.update(app=app, ctx=ctx, shared_hash=shared_hash, columns=columns)


def _null(v) -> str:
    return "\\N" if v is None else str(v)


def _worker_chunk(bounds: tuple[int, int]) -> tuple[int, int, bytes]:
    """COPY text for persons [start, end), encrypted and indexed as production does."""
    from idp.crypto.passwords import hash_password
    from idp.models import ID_NUMBER, PHONE, _fieldcrypto, id_number_index, phone_index

    start, end = bounds
    crypto = _fieldcrypto()
    rng = random.Random(start)  # noqa: S311 - synthetic data, reproducible
    now = time.time()
    columns, shared = _W["columns"], _W["shared_hash"]
    lines = []
    for i in range(start, end):
        number, phone = id_number_of(i), phone_of(i)
        kind = kind_of(i)[0]
        created = now - rng.random() * 3 * 365 * 86400
        row = {"id": secrets.token_hex(16),
               "id_number_enc": crypto.encrypt(number, ID_NUMBER),
               "id_number_idx": id_number_index(number), "id_kind": kind,
               "name": _name(rng), "phone_enc": crypto.encrypt(phone, PHONE),
               "phone_idx": phone_index(phone),
               "password_hash": hash_password(password_of(i)) if has_own_password(i) else shared,
               "status": "active", "assurance_level": "L2", "assurance_method": None,
               "assurance_verified_at": None, "close_requested_at": None,
               "created_at": repr(created), "updated_at": repr(created)}
        lines.append("\t".join(_null(row[c]) for c in columns))
    return start, end, ("\n".join(lines) + "\n").encode()


def _person_schema(cur) -> tuple[list[str], str | None]:
    """(CREATE INDEX statements of person's secondary indexes, its primary key's
    definition) as the migrations made them."""
    cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'person' AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE conrelid = 'person'::regclass) "
                "ORDER BY indexname")
    indexes = [r[0] for r in cur.fetchall()]
    cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'person'::regclass AND contype = 'p'")
    pk = cur.fetchone()
    return indexes, (f'ALTER TABLE person ADD CONSTRAINT "{pk[0]}" {pk[1]}' if pk else None)


def _schema_fingerprint(cur) -> list:
    cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'person' "
                "ORDER BY indexname")
    return cur.fetchall()


SAVED_SCHEMA = "person-indexes.json"


def restore_indexes(url: str, instance: str, log) -> None:
    """After an interrupted bulk load: build the person indexes it had dropped."""
    import psycopg

    saved = Path(instance, SAVED_SCHEMA)
    if not saved.exists():
        return
    schema = json.loads(saved.read_text())
    with psycopg.connect(url) as conn:
        cur = conn.cursor()
        cur.execute("SET maintenance_work_mem = '1GB'")
        have = {name for name, _d in _schema_fingerprint(cur)}
        if schema["pk"] and schema["pk"].split('"')[1] not in have:
            log("  an interrupted bulk load: rebuilding the primary key")
            cur.execute(schema["pk"])
        for definition in schema["indexes"]:
            if definition.split(" ON ")[0].split()[-1] not in have:
                log(f"  rebuilding: {definition}")
                cur.execute(definition)
        conn.commit()
        conn.autocommit = True
        cur.execute("ANALYZE person")
        if [list(r) for r in _schema_fingerprint(cur)] != schema["fingerprint"]:
            raise SystemExit("person's indexes differ from the migrations' after the rebuild")
    saved.unlink()


def seed(url: str, overrides: dict, instance: str, start: int, target: int, workers: int,
         bulk_over: int, log) -> dict:
    """Add persons [start, target); returns the seeding figures."""
    import psycopg

    from idp.models import Person

    columns = [c.name for c in Person.__table__.columns]
    from idp import create_app
    from idp.crypto.passwords import hash_password

    app = create_app(overrides, instance_path=instance)
    with app.app_context():
        shared = hash_password(secrets.token_urlsafe(24))
    bulk = target - start > bulk_over
    conn = psycopg.connect(url)
    cur = conn.cursor()
    before = _schema_fingerprint(cur)
    indexes, pk = _person_schema(cur)
    if bulk:
        # Kept until the indexes are back, so that an interrupted load can be finished
        # (--resume) or measured as far as it got (--resume --stages <rows so far>).
        Path(instance, SAVED_SCHEMA).write_text(json.dumps(
            {"indexes": indexes, "pk": pk, "fingerprint": before}))
        log(f"bulk load: dropping person's {len(indexes)} secondary indexes and primary key "
            "(rebuilt after the load)")
        for definition in indexes:
            name = definition.split(" ON ")[0].split()[-1]
            cur.execute(f'DROP INDEX "{name}"')
        if pk:
            cur.execute(f'ALTER TABLE person DROP CONSTRAINT "{pk.split(chr(34))[1]}"')
        conn.commit()
    statement = f"COPY person ({', '.join(columns)}) FROM STDIN"
    # The first 10,000 persons hold most of the real Argon2id hashes: small chunks there,
    # so both workers share them.
    cuts = sorted({start, target, *range(start, min(target, 10_000), 1_000), 10_000,
                   *range(max(start, 10_000) // CHUNK * CHUNK, target, CHUNK)})
    chunks = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if start <= a < b <= target]
    t0 = time.perf_counter()
    cpu0 = os.times()
    done, last_log = start, t0
    with mp.get_context("spawn").Pool(workers, _worker_init,
                                      (overrides, instance, shared, columns)) as pool:
        for _s, e, buf in pool.imap(_worker_chunk, chunks):
            with cur.copy(statement) as copy:
                copy.write(buf)
            conn.commit()
            done = e
            now = time.perf_counter()
            if now - last_log > 30 or e == target:
                rate = (done - start) / (now - t0)
                left = (target - done) / rate if rate else 0
                log(f"  seeded {done:,} persons ({rate:,.0f}/s; {left / 60:.0f} min to go)")
                last_log = now
    copy_s = time.perf_counter() - t0
    index_s = 0.0
    if bulk:
        t1 = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '1GB'")
        if pk:
            log("  rebuilding the primary key")
            cur.execute(pk)
        for definition in indexes:
            log(f"  rebuilding: {definition}")
            cur.execute(definition)
        conn.commit()
        index_s = time.perf_counter() - t1
        Path(instance, SAVED_SCHEMA).unlink()
    conn.autocommit = True
    cur.execute("ANALYZE person")
    after = _schema_fingerprint(cur)
    conn.close()
    if after != before:
        raise SystemExit(f"person's indexes differ after the load: {before} != {after}")
    cpu1 = os.times()
    added = target - start
    return {"added": added, "copy_seconds": round(copy_s, 1), "index_seconds": round(index_s, 1),
            "rows_per_s": round(added / (copy_s + index_s)) if added else None,
            "bulk": bulk, "workers": workers,
            "children_cpu_s": round(cpu1.children_user + cpu1.children_system
                                    - cpu0.children_user - cpu0.children_system, 1)}


# -- measuring ------------------------------------------------------------------------

def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def _summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": round(_pct(ms, 50), 3), "p99_ms": round(_pct(ms, 99), 3),
            "max_ms": round(max(ms), 3), "mean_ms": round(statistics.fmean(ms), 3)}


def _typed_id(number: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.1 and number.endswith("X"):
        return number[:-1] + "x"
    if r < 0.15:
        return number.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    if r < 0.2:
        return f" {number} "
    return number


def _typed_phone(phone: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.2:
        return "+86" + phone
    if r < 0.3:
        return f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    return phone


def measure_lookups(n_persons: int, count: int, seed_: int) -> dict:
    from idp.accounts import person_by_identifier
    from idp.extensions import db

    rng = random.Random(seed_)  # noqa: S311
    out = {}
    for kind in ("id", "phone"):
        times, hits, wrong = [], 0, 0
        for k in range(count):
            miss = k % 10 == 9  # one in ten is nobody's
            i = n_persons + rng.randrange(10**6) if miss else rng.randrange(n_persons)
            text = (_typed_id(id_number_of(i), rng) if kind == "id"
                    else _typed_phone(phone_of(i), rng))
            t = time.perf_counter()
            found = person_by_identifier(text)
            times.append((time.perf_counter() - t) * 1000)
            if found.person is not None:
                hits += 1
                plain = found.person.id_number if kind == "id" else found.person.phone
                wrong += plain != (id_number_of(i) if kind == "id" else phone_of(i))
            db.session.rollback()
            db.session.expunge_all()
        if wrong:
            raise SystemExit(f"{kind} look-up returned the wrong person {wrong} times")
        out[kind] = {**_summary(times), "hits": hits, "misses": count - hits}
    return out


def explain_lookups(n_persons: int) -> dict:
    from idp.extensions import db
    from idp.models import id_number_index, phone_index

    plans = {}
    i = n_persons // 2
    for kind, column, value in (("id", "id_number_idx", id_number_index(id_number_of(i))),
                                ("phone", "phone_idx", phone_index(phone_of(i)))):
        rows = db.session.execute(db.text(
            f"EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM person WHERE {column} = :v LIMIT 2"),  # noqa: S608
            {"v": value}).all()
        plans[kind] = [r[0] for r in rows]
    db.session.rollback()
    return plans


def measure_signins(app, n_persons: int, count: int) -> dict:
    """Sign-in and code exchange through the app, one new browser per sign-in."""
    from idp.extensions import db
    from tests.helpers import form_fields, pkce_pair, query

    if n_persons > 10_000:
        accounts = [i for i in range(25_025, n_persons, PASSWORD_SAMPLE_LARGE)]
    else:
        accounts = [i for i in range(25, min(n_persons, 10_000), PASSWORD_SAMPLE_SMALL)]
    rp = app.config["_SCALE_RP"]
    login_ms, token_ms, failures = [], [], 0
    for k in range(count):
        i = accounts[k % len(accounts)]
        addr = f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255 or 1}"
        client = app.test_client()
        client.environ_base.update(REMOTE_ADDR=addr, HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux "
                                   "x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36")
        verifier, challenge = pkce_pair()
        resp = client.get("/authorize", query_string={
            "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
            "scope": "openid profile", "state": "s", "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge, "code_challenge_method": "S256"})
        page = client.get(resp.headers["Location"])
        fields = form_fields(page.get_data(as_text=True))
        username = id_number_of(i) if k % 2 == 0 else phone_of(i)
        t = time.perf_counter()
        resp = client.post("/login", data={**fields, "username": username,
                                           "password": password_of(i)})
        login_ms.append((time.perf_counter() - t) * 1000)
        for _ in range(4):  # consent, then back to /authorize, then the code
            if resp.status_code != 302 or "code=" in resp.headers["Location"]:
                break
            loc = resp.headers["Location"]
            if "/consent" in loc:
                fields = form_fields(client.get(loc).get_data(as_text=True))
                resp = client.post("/consent", data={**fields, "consent": "allow"})
            else:
                resp = client.get(loc)
        if resp.status_code != 302 or "code=" not in resp.headers.get("Location", ""):
            failures += 1
            continue
        code = query(resp.headers["Location"])["code"]
        t = time.perf_counter()
        tok = client.post("/token", headers=rp.basic, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier})
        token_ms.append((time.perf_counter() - t) * 1000)
        if tok.status_code != 200:
            failures += 1
        db.session.remove()
    if failures:
        raise SystemExit(f"{failures} of {count} sign-ins or code exchanges failed")
    return {"signin": _summary(login_ms), "token": _summary(token_ms),
            "accounts": len(set(accounts[: count]))}


def hash_alone(app, count: int = 20) -> dict:
    from idp.crypto.passwords import hash_password, verify_password

    with app.app_context():
        stored = hash_password("Scale-hash-alone")
        ms = []
        for _ in range(count):
            t = time.perf_counter()
            verify_password(stored, "Scale-hash-alone")
            ms.append((time.perf_counter() - t) * 1000)
    return _summary(ms)


def person_bytes() -> dict:
    from idp.extensions import db

    row = db.session.execute(db.text(
        "SELECT count(*), pg_total_relation_size('person'), pg_relation_size('person'), "
        "pg_indexes_size('person'), pg_total_relation_size('person') - pg_relation_size('person')"
        " - pg_indexes_size('person'), pg_database_size(current_database()) FROM person")).one()
    n, total, heap, indexes, toast, dbsize = row
    per_index = dict(db.session.execute(db.text(
        "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
        "WHERE relname = 'person' ORDER BY 1")).all())
    db.session.rollback()
    return {"persons": n, "total_bytes": total, "bytes_per_person": round(total / n, 1),
            "heap_per_person": round(heap / n, 1), "indexes_per_person": round(indexes / n, 1),
            "toast_fsm_vm_bytes": toast, "database_bytes": dbsize,
            "index_bytes": {k: v for k, v in per_index.items()}}


def session_bytes(app, count: int) -> dict:
    """Redis memory of ``count`` SSO sessions made by the product's session code."""
    import redis

    from idp.authn import session
    from idp.extensions import db
    from idp.models import Person
    from idp.store import store

    r = redis.Redis.from_url(app.config["REDIS_URL"])
    prefix = app.config["REDIS_PREFIX"]
    people = db.session.scalars(db.select(Person).limit(count)).all()
    db.session.expunge_all()

    def keys() -> set[bytes]:
        return set(r.scan_iter(match=prefix + "*", count=5000))

    before_keys = keys()
    r.execute_command("MEMORY", "PURGE")
    used0 = r.info("memory")["used_memory"]
    sids = []
    for k, person in enumerate(people):
        # A fresh app context (and so a fresh ``g``) per sign-in: each is another browser,
        # whose start() must not end the previous one's session.
        with app.app_context(), app.test_request_context("/login", method="POST", environ_base={
                "REMOTE_ADDR": f"172.16.{k >> 8 & 255}.{k & 255}",
                "HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
                                   "AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"}):
            sess = session.start(person, ["pwd"])
            session.add_client(sess, "scale-rp")
            sids.append(sess.key)
    used1 = r.info("memory")["used_memory"]
    made = keys() - before_keys
    usage = sum(r.memory_usage(k, samples=0) or 0 for k in made)
    by_kind: dict[str, list[int]] = {}
    for k in made:
        name = k.decode()[len(prefix):].split(":", 1)[0]
        by_kind.setdefault(name, []).append(r.memory_usage(k, samples=0) or 0)
    sample = store().get(sids[0])
    if sample is None or sum(1 for k in made if b":sso:" in k) != len(people):
        raise SystemExit("the sessions made did not all stay alive")
    for key in made:
        r.delete(key)
    db.session.rollback()
    per = usage / len(people)
    delta = (used1 - used0) / len(people)
    return {"sessions": len(people), "keys": len(made),
            "memory_usage_bytes_per_session": round(per), "info_delta_bytes_per_session":
            round(delta), "by_key": {k: round(statistics.fmean(v)) for k, v in by_kind.items()},
            "record_json_bytes": len(json.dumps(sample, separators=(",", ":"))),
            # By MEMORY USAGE: the INFO delta also counts whatever else the shared
            # server did meanwhile (other clients' keys), so it is shown, not used.
            "projected_1m_sessions_mib": round(per * 1_000_000 / 2**20)}


def measure_stage(app, n: int, args, log) -> dict:
    with app.app_context():
        log(f"measuring at {n:,} persons")
        size = person_bytes()
        log(f"  PostgreSQL: {size['bytes_per_person']} bytes/person (heap "
            f"{size['heap_per_person']}, indexes {size['indexes_per_person']}); "
            f"person table {size['total_bytes'] / 2**20:,.0f} MiB")
        plans = explain_lookups(n)
        for kind, plan in plans.items():
            log(f"  EXPLAIN {kind}: " + " | ".join(p.strip() for p in plan[:3]))
        measure_lookups(n, min(200, args.lookups), seed_=1)  # warm the cache and connections
        lookups = measure_lookups(n, args.lookups, seed_=n)
        for kind, s in lookups.items():
            log(f"  {kind} look-up: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms "
                f"({s['hits']} hits, {s['misses']} misses)")
    signins = measure_signins_ctx(app, n, args.signins)
    log(f"  sign-in: p50 {signins['signin']['p50_ms']:.0f} ms, p99 "
        f"{signins['signin']['p99_ms']:.0f} ms; code exchange: p50 "
        f"{signins['token']['p50_ms']:.1f} ms, p99 {signins['token']['p99_ms']:.1f} ms "
        f"({args.signins} sign-ins, {signins['accounts']} accounts)")
    with app.app_context():
        sessions = session_bytes(app, args.sessions)
    log(f"  Redis: {sessions['memory_usage_bytes_per_session']} bytes/session by MEMORY USAGE "
        f"({sessions['info_delta_bytes_per_session']} by INFO delta; {sessions['by_key']}); "
        f"1,000,000 sessions ≈ {sessions['projected_1m_sessions_mib']:,} MiB")
    return {"persons": n, "postgres": size, "plans": plans, "lookups": lookups, **signins,
            "redis_sessions": sessions, "load": os.getloadavg()}


def measure_signins_ctx(app, n: int, count: int) -> dict:
    with app.app_context():
        measure_signins(app, n, 2)  # warm-up
        return measure_signins(app, n, count)


# -- main ------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", default="10000,10000000",
                    help="person counts to grow to and measure at, comma-separated")
    ap.add_argument("--db", default="idp_scale")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--resume", action="store_true",
                    help="continue seeding the kept database --db (same KEK)")
    ap.add_argument("--seed-only", action="store_true", help="seed, measure nothing")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--bulk-over", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=5000)
    ap.add_argument("--signins", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--smoke", action="store_true",
                    help="2,000 persons, cheap Argon2id, few samples: seconds")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    if args.smoke:
        args.stages, args.lookups, args.signins, args.sessions = "1000,2000", 200, 4, 200
        if args.db == "idp_scale":
            args.db = "idp_scale_smoke_" + secrets.token_hex(3)
    stages = [int(s) for s in args.stages.split(",")]

    import psycopg
    import redis

    from tests import backends

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    admin = backends.PG_ADMIN_URL
    url = admin.rsplit("/", 1)[0] + "/" + args.db
    instance = os.path.join(tempfile.gettempdir(), f"idp-scale-{args.db}")
    os.makedirs(instance, exist_ok=True)
    kek_file = os.path.join(instance, "kek")
    if not args.resume:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{args.db}"')
        with open(kek_file, "w") as fh:
            fh.write(secrets.token_hex(32))
    with open(kek_file) as fh:
        kek = fh.read().strip()
    prefix = f"idpscale:{args.db}:"
    overrides = {"ISSUER": "http://localhost", "DATABASE_URL": url, "KEK": kek,
                 "REDIS_URL": backends.REDIS_URL, "REDIS_PREFIX": prefix}
    if args.smoke:
        overrides.update(ARGON2_TIME_COST=1, ARGON2_MEMORY_COST=8 * 1024)
    backends.flush_redis_prefix(prefix)
    if args.resume:
        restore_indexes(url, instance, print)

    from idp import create_app
    from idp.bootstrap import initialise
    from idp.extensions import db

    app = create_app(overrides, instance_path=instance)
    with app.app_context():
        initialise()
        from idp.clients import register_client
        from idp.models import Client
        from tests.helpers import RP

        secret = "scale-bench-secret-" + kek[:16]
        if db.session.scalar(db.select(Client).where(Client.client_id == "scale-rp")) is None:
            register_client(client_id="scale-rp", name="规模测试应用", secret=secret,
                            auth_method="client_secret_basic",
                            redirect_uris=["https://rp.example/cb"], first_party=True)
        app.config["_SCALE_RP"] = RP("scale-rp", secret, "https://rp.example/cb")
        have = db.session.scalar(db.text("SELECT count(*) FROM person"))
        db.session.remove()
    log(f"database {args.db}: {have:,} persons; stages {stages}; {args.workers} workers; "
        f"machine load {os.getloadavg()[0]:.1f}")
    results = {"settings": vars(args), "argon2": {k: app.config[k] for k in (
        "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM")},
        "hash_alone": hash_alone(app, 4 if args.smoke else 20), "stages": [], "seeding": []}
    log(f"Argon2id verify alone: p50 {results['hash_alone']['p50_ms']:.0f} ms, "
        f"p99 {results['hash_alone']['p99_ms']:.0f} ms")
    out_path = args.json_out or os.path.join(instance, "scale-bench.json")
    try:
        for n in stages:
            if n > have:
                log(f"seeding persons {have:,}..{n:,}")
                figures = seed(url, overrides, instance, have, n, args.workers, args.bulk_over,
                               log)
                figures["to"] = n
                results["seeding"].append(figures)
                log(f"  {figures['added']:,} persons in {figures['copy_seconds']} s + "
                    f"{figures['index_seconds']} s of index building = "
                    f"{figures['rows_per_s']:,}/s")
                have = n
            if not args.seed_only:
                results["stages"].append(measure_stage(app, n, args, log))
            Path(out_path).write_text(json.dumps(results, ensure_ascii=False, indent=1))
        if len(results["stages"]) >= 2:
            a, b = results["stages"][0], results["stages"][-1]
            log(f"{a['persons']:,} -> {b['persons']:,} persons:")
            for label, key in (("ID look-up p99", ("lookups", "id")),
                               ("phone look-up p99", ("lookups", "phone")),
                               ("sign-in p99", ("signin",)), ("code exchange p99", ("token",))):
                x, y = a, b
                for part in key:
                    x, y = x[part], y[part]
                log(f"  {label}: {x['p99_ms']} ms -> {y['p99_ms']} ms "
                    f"({y['p99_ms'] / x['p99_ms']:.2f}x)")
        log(f"results: {out_path}")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        backends.flush_redis_prefix(prefix)
        redis.Redis.from_url(backends.REDIS_URL).close()
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
            log(f"dropped database {args.db} (--keep keeps it)")


if __name__ == "__main__":
    main()
