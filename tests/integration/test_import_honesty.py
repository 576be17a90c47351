"""Import honesty (issue 12): every rejected or suspicious row is counted and written to
the reject report (where, masked legacy id, category, reason); unusable password hashes
are counted, not swallowed; a dry run reports exactly what the real run then does."""

from __future__ import annotations

import csv
import os
import stat

from connectors.csv_source import CsvSource
from connectors.importer import run_import
from idp.extensions import db
from idp.models import LegacyAccount, Person, ReviewItem, id_number_index

FIELDS = {"legacy_id": "编号", "name": "姓名", "id_number": "身份证号",
          "password_hash": "密码"}
HEADER = "编号,姓名,身份证号,密码\n"
NUMBER = "110101199003070011"  # valid check digit
OTHER = "110101199003074514"
MD5_OF_SECRET = "5ebe2294ecd0e0f08eab7690d2a6ee69"  # md5("secret")


def _csv(tmp_path, lines, name="old.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _source(path, **kw):
    kw.setdefault("password_format", "md5")
    return CsvSource("shebao", FIELDS, path=path, **kw)


def _report(summary):
    with open(summary.reject_report, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _counts():
    return tuple(db.session.scalar(db.select(db.func.count()).select_from(model))
                 for model in (LegacyAccount, Person, ReviewItem))


def test_a_hash_that_is_not_hex_is_counted_and_reported_not_swallowed(ctx, tmp_path):
    path = _csv(tmp_path, [f"a1,赵六,{NUMBER},{MD5_OF_SECRET}",
                           f"a2,钱七,{OTHER},not-hex-at-all"])
    summary = run_import(_source(path, trusted=True), reject_report=tmp_path / "r.csv")
    assert (summary.created, summary.password_rejected, summary.rejected) == (2, 1, 1)
    assert summary.rejects == {"password": 1}
    (line,) = _report(summary)
    assert line["where"] == "line 3" and line["legacy_id"] == "a2"
    assert line["category"] == "password" and "hexadecimal" in line["reason"]
    assert "not-hex-at-all" not in line["reason"]
    hashes = dict(db.session.execute(db.select(Person.id_number_idx, Person.password_hash)).all())
    assert hashes[id_number_index(NUMBER)] and hashes[id_number_index(OTHER)] is None


def test_a_hash_without_a_configured_format_is_counted(ctx, tmp_path):
    path = _csv(tmp_path, [f"a1,赵六,{NUMBER},{MD5_OF_SECRET}"])
    summary = run_import(_source(path, password_format=None, trusted=True))
    assert summary.password_rejected == 1 and summary.rejects == {"password": 1}
    assert summary.reject_report is None  # counted even with no report file asked for


def test_every_kind_of_reject_is_in_the_report_masked(ctx, tmp_path):
    path = _csv(tmp_path, [
        f"13912345678,李四,{NUMBER},",        # a phone number as the legacy id
        "a2,王五,110105194912310021,",        # wrong check digit: invalid
        "a3,多,了,一,列",                     # extra column
        "a4,少一列",                           # short row
        ',无编号,,',                           # no legacy id
        f"13912345678,李四,{NUMBER},",        # repeated legacy id
        'a7,"没关的引号,,',                   # unterminated quote, last line
    ])
    report = tmp_path / "rejects" / "r.csv"
    summary = run_import(_source(path), reject_report=report)
    assert summary.read == 3 and summary.queued == 1
    assert summary.rejects == {"invalid": 1, "unreadable": 4, "repeated": 1}
    assert summary.rejected == 6 == len(_report(summary))
    assert summary.skipped_rows == 4
    got = {(r["where"], r["category"]) for r in _report(summary)}
    assert got == {("line 3", "invalid"), ("line 4", "unreadable"), ("line 5", "unreadable"),
                   ("line 6", "unreadable"), ("line 7", "repeated"), ("line 8", "unreadable")}
    text = report.read_text(encoding="utf-8-sig")
    assert "13912345678" not in text and "139****5678" in text
    assert NUMBER not in text and "110105194912310021" not in text and "李四" not in text
    assert stat.S_IMODE(os.stat(report).st_mode) == 0o600


def test_a_clean_source_leaves_no_report(ctx, tmp_path):
    summary = run_import(_source(_csv(tmp_path, [f"a1,赵六,{NUMBER},"])),
                         reject_report=tmp_path / "r.csv")
    assert summary.rejected == 0 and summary.reject_report is None
    assert not (tmp_path / "r.csv").exists()


def _comparable(summary) -> dict:
    out = summary.as_dict()
    for key in ("run_id", "dry_run", "seconds", "reject_report"):
        out.pop(key)
    return out


def test_dry_run_and_real_run_agree_across_batches(ctx, person, tmp_path):
    # batch_size=2 puts each repeat in a later batch than its first occurrence: a dry
    # run that rolled back every batch forgot the person created (created twice, not
    # merged) and the legacy id read (not counted as repeated).
    path = _csv(tmp_path, [
        f"a1,赵六,{NUMBER},", f"a2,钱七,{OTHER},",
        f"a3,赵六,{NUMBER},",         # same person as a1: merged into who a1 created
        f"a1,赵六,{NUMBER},",         # a1 again: repeated
        "a5,孙八,110105194912310021,", "a6,周九,,",
    ])
    before = _counts()
    dry = run_import(_source(path, trusted=True), dry_run=True, batch_size=2)
    assert _counts() == before  # wrote nothing
    real = run_import(_source(path, trusted=True), batch_size=2)
    assert _comparable(dry) == _comparable(real)
    assert (real.created, real.merged, real.repeated, real.invalid) == (2, 1, 1, 1)

    # ... and on the next run, rows gone from the source are reported by both alike.
    path = _csv(tmp_path, [f"a1,赵六,{NUMBER},", f"a2,钱七,{OTHER},"])
    dry = run_import(_source(path, trusted=True), dry_run=True, batch_size=2)
    states = dict(db.session.execute(db.select(LegacyAccount.legacy_id, LegacyAccount.state)).all())
    assert "gone" not in states.values()
    real = run_import(_source(path, trusted=True), batch_size=2)
    assert _comparable(dry) == _comparable(real) and real.gone == 3


def test_the_20k_row_generator_dry_and_real_runs_agree(ctx, tmp_path):
    """The bench's generator (repeats across batch boundaries, names that differ, shared
    numbers between two systems), trimmed to 3,000 rows for the test's run time."""
    from bench.legacy_import_bench import write_exports

    fields = {"legacy_id": "用户编号", "name": "姓名", "id_number": "身份证号", "phone": "手机",
              "org_code": "组织机构代码", "credit_code": "统一社会信用代码"}
    for system, path, _n in write_exports(tmp_path, 3000):
        dry = run_import(CsvSource(system, fields, path=path, trusted=True), dry_run=True,
                         batch_size=150)
        real = run_import(CsvSource(system, fields, path=path, trusted=True), batch_size=150)
        assert _comparable(dry) == _comparable(real)
