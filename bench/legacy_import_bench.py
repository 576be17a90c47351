"""Legacy import at scale: two synthetic GBK exports with realistic dirt, imported into
PostgreSQL (or SQLite with --sqlite), then imported again unchanged. Prints rows/s,
CPU per row (ours and the PostgreSQL backend's), resident memory as the run goes and
the final counts.

    .venv/bin/python bench/legacy_import_bench.py --rows 1000000

The exports are written once per (rows, seed) under --export-dir and reused.

Dirt, as old government systems have it:

* system A (``shebao``, 70% of the rows): legacy 15-digit numbers (5%), wrong check
  digits (3%), no number (4%), names with a space or a middle dot (5%), phones on half
  the rows, a legacy id exported twice with a changed phone (0.5%);
* system B (``gongjijin``, 30%): half its rows are people (or organisations) A has too —
  by the same number or its 15-digit form (15%), under the same name, a variant
  (spaced, middle dot: 10%) or another name (3%, for review) — the rest are its own;
* organisations (3% of each): a unified social credit code, or only the old
  organisation code (with or without its dash), some with a wrong check character.

The issue's targets: >= 5,000 rows/s end to end for 1,000,000 rows with memory flat as
the input grows, and an unchanged re-run >= 5x faster than the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "用户编号,姓名,身份证号,手机,组织机构代码,统一社会信用代码\n"
FIELDS = {"legacy_id": "用户编号", "name": "姓名", "id_number": "身份证号", "phone": "手机",
          "org_code": "组织机构代码", "credit_code": "统一社会信用代码"}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘于蒋蔡余杜"
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧巧美淑惠珠翠雅芝玉萍红娥玲芬燕彩春菊兰"
         "凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎"
         "锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿")
ORG_WORDS = "华兴盛达隆泰丰源鑫宏远恒通嘉和信诚安康"
ORG_SUFFIX = ("有限公司", "科技有限公司", "贸易有限责任公司", "商行", "农民专业合作社")
_USCC_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _number(rng: random.Random) -> str:
    from idp.identity import compute_check_char

    body = (f"{rng.choice(['110105', '310104', '440304', '510107', '330106', '420102'])}"
            f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            f"{rng.randint(0, 999):03d}")
    return body + compute_check_char(body)


def _wrong_check(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _variant(rng: random.Random, name: str) -> str:
    """The same name as another system wrote it (the matcher must see through it)."""
    r = rng.random()
    if r < 0.4:
        return name[0] + " " + name[1:]
    if r < 0.7:
        return name[0] + "·" + name[1:]
    return " " + name + " "


def _uscc(rng: random.Random) -> str:
    from idp.identity import compute_credit_check_char, compute_org_check_char

    body = "".join(rng.choice(_USCC_BODY) for _ in range(8))
    first17 = f"91{rng.choice(['110105', '310104', '440304'])}{body}{compute_org_check_char(body)}"
    return first17 + compute_credit_check_char(first17)


def _org_fields(rng: random.Random, uscc: str) -> tuple[str, str]:
    """(organisation code column, credit code column) as an old system holds them."""
    old = uscc[8:17]
    r = rng.random()
    if r < 0.55:
        return (old[:8] + "-" + old[8] if rng.random() < 0.5 else ""), uscc
    if r < 0.75:
        return old[:8] + "-" + old[8], ""  # only the old code, dashed
    if r < 0.90:
        return old, ""  # only the old code, undashed
    if r < 0.95:
        return "", uscc[:17] + ("0" if uscc[17] != "0" else "1")  # wrong check character
    return old[:8] + "-" + ("0" if old[8] != "0" else "1"), ""  # wrong org code check


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}"


def _org_name(rng: random.Random) -> str:
    return rng.choice(ORG_WORDS) + rng.choice(ORG_WORDS) + rng.choice(ORG_SUFFIX)


def _a_row(seed: int, i: int) -> tuple[bool, str, str]:
    """System A's row ``i`` as the truth (before dirt): (is_org, key, name), where key is
    the ID number or the credit code. Derived from (seed, i) alone, so that system B
    can repeat any of A's people without the generator keeping them in memory."""
    rng = random.Random(f"{seed}:A:{i}")  # noqa: S311 - synthetic data, reproducible
    if rng.random() < 0.03:
        return True, _uscc(rng), _org_name(rng)
    return False, _number(rng), _name(rng)


def write_exports(folder: Path, rows: int, seed: int = 7) -> list[tuple[str, Path, int]]:
    """Write (or reuse) system A's and B's exports; returns (system, path, rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    n_a = rows * 7 // 10
    n_b = rows - n_a
    a_path, b_path = folder / f"shebao-{rows}-{seed}.csv", folder / f"gongjijin-{rows}-{seed}.csv"
    out = [("shebao", a_path, n_a), ("gongjijin", b_path, n_b)]
    if a_path.exists() and b_path.exists():
        return out
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible
    recent: deque[str] = deque(maxlen=100)
    with (a_path.with_suffix(".tmp")).open("wb") as fh:
        fh.write(HEADER.encode("gbk"))
        for i in range(n_a):
            if i % 200 == 199 and recent[0].endswith(",,"):
                # The old system exported an account twice, the later copy with a new
                # phone number: the first occurrence counts.
                legacy_id, name, number, _old_phone, old, credit = recent[0].split(",")
                line = f"{legacy_id},{name},{number},{_phone(rng)},{old},{credit}"
            else:
                is_org, key, name = _a_row(seed, i)
                if is_org:
                    old, credit = _org_fields(rng, key)
                    line = f"A{i:07d},{name},,,{old},{credit}"
                else:
                    shown, r = key, rng.random()
                    if r < 0.05:
                        shown = key[:6] + key[8:17]
                    elif r < 0.08:
                        shown = _wrong_check(key)
                    elif r < 0.12:
                        shown = ""
                    written = _variant(rng, name) if rng.random() < 0.05 else name
                    phone = _phone(rng) if rng.random() < 0.5 else ""
                    line = f"A{i:07d},{written},{shown},{phone},,"
            recent.append(line)
            fh.write((line + "\n").encode("gbk"))
    with (b_path.with_suffix(".tmp")).open("wb") as fh:
        fh.write(HEADER.encode("gbk"))
        for i in range(n_b):
            if rng.random() < 0.5:  # someone A has too
                is_org, key, name = _a_row(seed, rng.randrange(n_a))
            else:
                is_org = rng.random() < 0.03
                key, name = (_uscc(rng), _org_name(rng)) if is_org else (_number(rng), _name(rng))
                if not is_org and rng.random() < 0.03:
                    key = _wrong_check(key)
            if is_org:
                old, credit = _org_fields(rng, key)
                fh.write(f"B{i:07d},{name},,,{old},{credit}\n".encode("gbk"))
                continue
            if rng.random() < 0.15:
                key = key[:6] + key[8:17]
            if rng.random() < 0.10:
                name = _variant(rng, name)
            elif rng.random() < 0.03:
                name = _name(rng)  # another name under the same number: review
            phone = _phone(rng) if rng.random() < 0.3 else ""
            fh.write(f"B{i:07d},{name},{key},{phone},,\n".encode("gbk"))
    a_path.with_suffix(".tmp").rename(a_path)
    b_path.with_suffix(".tmp").rename(b_path)
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    tck = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / tck, sum(values) / tck


def run_phase(label: str, exports, backend_pid: int | None, batch_size: int,
              samples: list, workers: int | None = None) -> dict:
    from connectors.csv_source import CsvSource
    from connectors.importer import run_import

    totals = {k: 0 for k in ("read", "merged", "created", "queued", "invalid", "unchanged",
                             "updated", "repeated", "gone", "organisations")}
    rules: dict[str, int] = {}
    done_before = 0
    next_sample = [100_000]

    def progress(s) -> None:
        done = done_before + s.read
        if done >= next_sample[0]:
            samples.append((label, done, round(_rss_mb(), 1)))
            next_sample[0] += 100_000

    cpu0, pg0, (busy0, _all) = time.process_time(), _cpu_of(backend_pid or 0), _machine_busy()
    kids0 = os.times()
    t0 = time.perf_counter()
    for system, path, _n in exports:
        source = CsvSource(system, FIELDS, path=path, trusted=True, encoding="auto")
        s = run_import(source, batch_size=batch_size, progress=progress, workers=workers)
        done_before += s.read
        for key in totals:
            totals[key] += getattr(s, key)
        for rule, n in s.rules.items():
            rules[rule] = rules.get(rule, 0) + n
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    kids1 = os.times()
    # The worker processes (reaped when each import ends).
    kids = (kids1.children_user + kids1.children_system
            - kids0.children_user - kids0.children_system)
    pg = _cpu_of(backend_pid or 0) - pg0
    busy1, _all = _machine_busy()
    others = max(0.0, (busy1 - busy0) - cpu - kids - pg) / wall
    read = totals["read"]
    result = {"label": label, "seconds": round(wall, 2), "rows_per_s": round(read / wall),
              "cpu_us_per_row": round(cpu / read * 1e6, 1),
              "workers_cpu_us_per_row": round(kids / read * 1e6, 1),
              "pg_cpu_us_per_row": round(pg / read * 1e6, 1) if backend_pid else None,
              "others_cores": round(others, 2), "rss_mb": round(_rss_mb(), 1),
              **totals, "rules": dict(sorted(rules.items(), key=lambda kv: -kv[1]))}
    print(f"{label}: {read:,} rows in {wall:.1f} s = {read / wall:,.0f} rows/s "
          f"(ours {result['cpu_us_per_row']} µs CPU/row"
          + (f" + workers {result['workers_cpu_us_per_row']} µs/row" if kids else "")
          + (f", PostgreSQL backend {result['pg_cpu_us_per_row']} µs/row" if backend_pid else "")
          + f"; other processes used {others:.2f} cores meanwhile)")
    print(f"  read {read:,}  merged {totals['merged']:,}  created {totals['created']:,}  "
          f"queued {totals['queued']:,}  invalid {totals['invalid']:,}  "
          f"unchanged {totals['unchanged']:,}  updated {totals['updated']:,}  "
          f"repeated {totals['repeated']:,}  "
          f"organisations {totals['organisations']:,}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sqlite", action="store_true")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the importer's")
    ap.add_argument("--workers", type=int, default=None,
                    help="worker processes for parsing and encryption; 0: the serial path; "
                         "default: the importer's choice (one per core from 20,000 rows)")
    ap.add_argument("--export-dir", default=os.path.join(tempfile.gettempdir(),
                                                         "legacy-bench-exports"))
    ap.add_argument("--json", dest="json_out", default=None, help="also write results here")
    ap.add_argument("--smoke", action="store_true",
                    help="3,000 rows through two worker processes, exports in a temporary "
                         "directory: seconds")
    args = ap.parse_args()
    if args.smoke:
        args.rows = 3000
        args.workers = 2 if args.workers is None else args.workers
        args.export_dir = tempfile.mkdtemp(prefix="legacy-bench-smoke-")

    sys.path.insert(0, str(ROOT))  # for idp, connectors and tests.backends
    from connectors.importer import BATCH_SIZE
    from idp import audit, create_app
    from idp.bootstrap import initialise
    from idp.extensions import db
    from tests import backends

    t = time.perf_counter()
    exports = write_exports(Path(args.export_dir), args.rows, args.seed)
    size = sum(p.stat().st_size for _s, p, _n in exports) / 1e6
    print(f"exports: {', '.join(f'{s} {p.name}' for s, p, _n in exports)} "
          f"({size:.0f} MB GBK, {time.perf_counter() - t:.1f} s to generate or find)")
    tmp = Path(tempfile.mkdtemp(prefix="legacy-bench-"))
    overrides = {"ISSUER": "http://localhost", "KEK": secrets.token_hex(32)}
    name = None
    if not args.sqlite:
        name, url = backends.create_pg_database()
        overrides["DATABASE_URL"] = url
    app = create_app(overrides, instance_path=str(tmp))
    batch_size = args.batch_size or BATCH_SIZE
    samples: list = []
    try:
        with app.app_context():
            initialise()
            pid = None if args.sqlite else db.session.scalar(db.text("SELECT pg_backend_pid()"))
            print(f"start RSS {_rss_mb():.0f} MiB; batch size {batch_size}")
            first = run_phase("first run", exports, pid, batch_size, samples, args.workers)
            again = run_phase("unchanged re-run", exports, pid, batch_size, samples,
                              args.workers)
            audit.flush()
            from idp.audit import background

            background.ENABLED = False  # nothing left to chain once the database is gone
            db.session.remove()
            db.engine.dispose()
    finally:
        if name:
            backends.drop_pg_database(name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ratio = first["seconds"] / again["seconds"]
    print(f"re-run {ratio:.1f}x faster than the first run")
    curve = ", ".join(f"{n // 1000:,}k: {mb:.0f} MiB" for label, n, mb in samples
                      if label == "first run")
    print(f"RSS during the first run: {curve or 'fewer than 100k rows'}; "
          f"peak RSS {peak:.0f} MiB"
          + (f", largest worker's peak RSS {worker_peak:.0f} MiB" if worker_peak else "")
          + f" ({'SQLite' if args.sqlite else 'PostgreSQL'})")
    if args.smoke:
        shutil.rmtree(args.export_dir, ignore_errors=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            {"rows": args.rows, "batch_size": batch_size, "workers": args.workers, "backend":
             "sqlite" if args.sqlite else "postgresql", "first": first, "rerun": again,
             "ratio": round(ratio, 2), "rss_samples": samples, "peak_rss_mb": round(peak),
             "worker_peak_rss_mb": round(worker_peak)},
            ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
