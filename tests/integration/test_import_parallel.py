"""The legacy import's worker processes (issue 15) change when rows are parsed and
encrypted, never what is decided: the parallel run gives the serial run's accounts,
people, organisations, review items, counts and reject report, row for row."""

from __future__ import annotations

from connectors.csv_source import CsvSource
from connectors.importer import read_row, run_import
from idp.extensions import db
from idp.identity import compute_check_char, compute_credit_check_char, compute_org_check_char
from idp.models import LegacyAccount, Organisation, Person, ReviewItem
from tests.helpers import CITIZEN_ID, make_person

FIELDS = {"legacy_id": "用户编号", "name": "姓名", "id_number": "身份证号", "phone": "手机",
          "org_code": "组织机构代码", "credit_code": "统一社会信用代码"}
HEADER = "用户编号,姓名,身份证号,手机,组织机构代码,统一社会信用代码\n"


def _number(i: int) -> str:
    body = f"4403041978{i // 28 % 12 + 1:02d}{i % 28 + 1:02d}{i % 1000:03d}"
    return body + compute_check_char(body)


def _uscc(i: int) -> str:
    body = f"{i:08d}"
    first17 = f"91440304{body}{compute_org_check_char(body)}"
    return first17 + compute_credit_check_char(first17)


def _lines() -> list[str]:
    """Dirt of every kind, spread over many small batches: repeats of a person within and
    across batches, 15-digit numbers, wrong check digits, phones only, organisations
    by credit code and by old code, a repeated legacy id, unreadable lines."""
    lines = [f"p000,李四,{CITIZEN_ID},,,"]  # the known person: merged
    for i in range(1, 60):
        number = _number(i)
        if i % 11 == 0:
            number = number[:17] + ("0" if number[17] != "0" else "1")  # wrong check digit
        elif i % 7 == 0:
            number = number[:6] + number[8:17]  # its 15-digit form
        phone = f"1390000{i:04d}" if i % 3 == 0 else ""
        lines.append(f"p{i:03d},王{i},{number},{phone},,")
        if i % 5 == 0:  # the same person again, later, as another system wrote the name
            lines.append(f"q{i:03d},王 {i},{_number(i)},,,")
        if i % 13 == 0:
            lines.append(f"q{i:03d}x,陈{i},{_number(i)},,,")  # same number, another name
    for i in range(8):
        uscc = _uscc(i)
        if i % 3 == 0:
            lines.append(f"o{i:02d},华兴{i}有限公司,,,{uscc[8:16]}-{uscc[16]},")  # old code only
        else:
            lines.append(f"o{i:02d},华兴{i}有限公司,,,,{uscc}")
    lines.insert(20, "r001,李 四,,139 1234 5678,,")  # no number: phone and name, review
    lines.insert(30, "p002,王二,,13811112222,,")  # a legacy id read before: repeated …
    lines.insert(10, "p001,王一,,13811113333,,")  # … and one batch after the first time
    lines.insert(40, 'u001,"未闭合,,,,')  # an unterminated quote: unreadable
    lines.insert(50, "u002,多一列,,,,,extra")  # an extra column: unreadable
    return lines


def _snapshot() -> dict:
    """Everything the import decided, by legacy id and identifier (internal ids differ
    from run to run)."""
    people = {p.id: (p.id_number, p.name, p.phone, p.id_kind, p.password_hash is not None)
              for p in db.session.scalars(db.select(Person))}
    orgs = {o.id: (o.uscc, o.name, o.org_type) for o in db.session.scalars(db.select(Organisation))}
    accounts = {}
    for a in db.session.scalars(db.select(LegacyAccount)):
        accounts[a.id] = a.legacy_id
    return {
        "accounts": {a.legacy_id: (a.state, a.rule, a.fingerprint, read_row(a),
                                   people.get(a.person_id), orgs.get(a.org_id))
                     for a in db.session.scalars(db.select(LegacyAccount))},
        "people": sorted(people.values()),
        "orgs": sorted(orgs.values()),
        "reviews": sorted((accounts[r.legacy_account_id], r.reason, r.state,
                           sorted(str(people.get(c)) for c in r.candidates))
                          for r in db.session.scalars(db.select(ReviewItem))),
    }


def _counts(summary) -> dict:
    out = summary.as_dict()
    for key in ("run_id", "seconds", "reject_report"):
        out.pop(key)
    return out


def _wipe(keep: Person) -> None:
    for table in ("review_item", "legacy_account", "organisation"):
        db.session.execute(db.text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
    db.session.execute(db.delete(Person).where(Person.id != keep.id))
    db.session.commit()


def test_parallel_import_decides_row_for_row_as_the_serial_one(ctx, tmp_path):
    keep = make_person()
    path = tmp_path / "old.csv"
    path.write_bytes((HEADER + "\n".join(_lines()) + "\n").encode("gbk"))
    runs = {}
    for workers in (0, 2):
        report = tmp_path / f"rejects-{workers}.csv"

        def source():
            return CsvSource("shebao", FIELDS, path=path, trusted=True)

        seen = []
        first = run_import(source(), batch_size=7, workers=workers, reject_report=str(report),
                           progress=lambda s, seen=seen: seen.append((s.read, s.created)))
        snapshot = _snapshot()
        again = run_import(source(), batch_size=7, workers=workers)
        runs[workers] = (_counts(first), snapshot, report.read_text(encoding="utf-8-sig"),
                         seen, _counts(again), _snapshot())
        _wipe(keep)
    serial, parallel = runs[0], runs[2]
    first = serial[0]
    # The input does exercise every path.
    assert first["merged"] and first["created"] and first["queued"] and first["invalid"]
    assert first["repeated"] == 2 and first["skipped_rows"] == 2 and first["organisations"] == 8
    assert serial[4]["unchanged"] == first["read"] - first["repeated"]
    assert serial[4]["repeated"] == 2 and serial[4]["created"] == 0
    assert parallel == serial
