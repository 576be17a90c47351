"""Legacy import throughput: a synthetic GBK export with realistic dirt, imported into
PostgreSQL (or SQLite with --sqlite). Prints rows/s, peak memory and the final counts.

    .venv/bin/python bench/legacy_import_bench.py --rows 50000

Dirt: a share of legacy 15-digit numbers, wrong check digits, name variants (spaces,
middle dots), rows without an ID number, and a second system repeating people of the
first. The issue's target is 1,000,000 rows at >= 5,000 rows/s; this driver is where
that is measured as the importer gets faster.
"""

from __future__ import annotations

import argparse
import random
import resource
import secrets
import tempfile
import time
from pathlib import Path


def _number(rng: random.Random) -> str:
    from idp.identity import compute_check_char

    body = (f"{rng.choice(['110105', '310104', '440304', '510107'])}"
            f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            f"{rng.randint(0, 999):03d}")
    return body + compute_check_char(body)


def write_export(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible
    surnames, given = "王李张刘陈杨黄赵吴周徐孙马朱胡", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超"
    with path.open("wb") as fh:
        fh.write("用户编号,姓名,身份证号,手机\n".encode("gbk"))
        for i in range(rows):
            number = _number(rng)
            name = rng.choice(surnames) + "".join(rng.choice(given) for _ in range(2))
            r = rng.random()
            if r < 0.05:
                number = number[:6] + number[8:17]  # legacy 15-digit form
            elif r < 0.08:
                number = number[:17] + ("0" if number[17] != "0" else "1")  # wrong check
            elif r < 0.12:
                number = ""
            if rng.random() < 0.05:
                name = name[0] + " " + name[1:]
            phone = f"13{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}" if r > 0.5 else ""
            fh.write(f"L{i:07d},{name},{number},{phone}\n".encode("gbk"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--sqlite", action="store_true")
    ap.add_argument("--batch-size", type=int, default=1000)
    args = ap.parse_args()

    import sys

    from connectors.csv_source import CsvSource
    from connectors.importer import run_import
    from idp import create_app
    from idp.bootstrap import initialise

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.backends
    from tests import backends

    tmp = Path(tempfile.mkdtemp(prefix="legacy-bench-"))
    export = tmp / "export.csv"
    t = time.perf_counter()
    write_export(export, args.rows)
    print(f"export: {args.rows:,} rows, {export.stat().st_size / 1e6:.1f} MB GBK "
          f"({time.perf_counter() - t:.1f} s to generate)")
    overrides = {"ISSUER": "http://localhost", "KEK": secrets.token_hex(32)}
    name = None
    if not args.sqlite:
        name, url = backends.create_pg_database()
        overrides["DATABASE_URL"] = url
    app = create_app(overrides, instance_path=str(tmp))
    fields = {"legacy_id": "用户编号", "name": "姓名", "id_number": "身份证号", "phone": "手机"}
    try:
        with app.app_context():
            initialise()
            for label in ("first run", "unchanged re-run"):
                source = CsvSource("bench-system", fields, path=export, trusted=True)
                t = time.perf_counter()
                s = run_import(source, batch_size=args.batch_size)
                dt = time.perf_counter() - t
                print(f"{label}: {s.read:,} rows in {dt:.1f} s = {s.read / dt:,.0f} rows/s; "
                      f"created {s.created:,} merged {s.merged:,} queued {s.queued:,} "
                      f"invalid {s.invalid:,} unchanged {s.unchanged:,}")
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak RSS {peak:.0f} MB ({'SQLite' if args.sqlite else 'PostgreSQL'})")
            from idp.extensions import db

            db.engine.dispose()
    finally:
        if name:
            backends.drop_pg_database(name)


if __name__ == "__main__":
    main()
