"""Importing legacy accounts: matching rules, idempotent re-runs, resumability, the
review queue with undo (issue 4 groundwork)."""

from __future__ import annotations

import pytest

from connectors import review
from connectors.csv_source import CsvSource
from connectors.importer import run_import
from idp.extensions import db
from idp.models import LegacyAccount, Person, ReviewItem, id_number_index
from tests.helpers import CITIZEN_ID

FIELDS = {"legacy_id": "用户编号", "name": "姓名", "id_number": "身份证号", "phone": "手机"}
HEADER = "用户编号,姓名,身份证号,手机\n"
ROWS = {
    "a1": f"a1,李四,{CITIZEN_ID},",                  # same number, same name → merged
    "a2": "a2,赵六,110101900307001,",                 # legacy 15-digit, nobody yet
    "a3": f"a3,李斯,{CITIZEN_ID.lower()},",          # same number, another name → review
    "a4": "a4,钱七,110105194912310021,",              # wrong check digit → invalid
    "a5": "a5,李 四,,139 1234 5678",                  # no number; phone + name only → review
}


def _csv(tmp_path, rows, name="old.csv"):
    path = tmp_path / name
    path.write_bytes((HEADER + "\n".join(rows) + "\n").encode("gbk"))
    return path


def _source(path, trusted=False):
    return CsvSource("shebao-2012", FIELDS, path=path, trusted=trusted)


def _states():
    return {a.legacy_id: (a.state, a.rule) for a in db.session.scalars(db.select(LegacyAccount))}


def test_rules_decide_and_record_why(ctx, person, tmp_path):
    summary = run_import(_source(_csv(tmp_path, ROWS.values())))
    assert (summary.read, summary.merged, summary.queued, summary.invalid) == (5, 1, 3, 1)
    states = _states()
    assert states["a1"] == ("merged", "id_number_and_name")
    assert states["a2"] == ("queued", "no_match_untrusted_source")
    assert states["a3"] == ("queued", "id_number_name_differs")
    assert states["a4"][0] == "invalid" and states["a4"][1].startswith("invalid_id_number")
    assert states["a5"] == ("queued", "weak_phone_and_name")
    assert db.session.scalar(db.select(db.func.count()).select_from(ReviewItem)) == 4
    assert db.session.scalar(db.select(LegacyAccount.person_id).where(
        LegacyAccount.legacy_id == "a1")) == person.id


def test_trusted_source_creates_people_with_converted_numbers(ctx, person, tmp_path):
    run_import(_source(_csv(tmp_path, [ROWS["a2"]]), trusted=True))
    created = db.session.scalar(db.select(Person).where(
        Person.id_number_idx == id_number_index("110101199003070011")))
    assert created is not None and created.name == "赵六"


def test_rerun_is_idempotent_changes_update_and_missing_rows_are_flagged(ctx, person, tmp_path):
    path = _csv(tmp_path, ROWS.values())
    run_import(_source(path))
    again = run_import(_source(path))
    assert again.unchanged == 5 and again.merged == again.queued == 0
    rows = dict(ROWS)
    rows["a3"] = f"a3,李四,{CITIZEN_ID},"  # corrected name upstream
    del rows["a5"]
    third = run_import(_source(_csv(tmp_path, rows.values())))
    assert (third.updated, third.merged, third.gone) == (1, 1, 1)
    states = _states()
    assert states["a3"][0] == "merged" and states["a5"][0] == "gone"
    # The question about the old a3 row is closed, not left dangling.
    assert {i.state for i in db.session.scalars(db.select(ReviewItem))} >= {"superseded"}


def test_dry_run_writes_nothing(ctx, person, tmp_path):
    summary = run_import(_source(_csv(tmp_path, ROWS.values())), dry_run=True)
    assert summary.merged == 1 and summary.queued == 3
    assert _states() == {}


def test_killed_import_resumes_to_the_same_end_state(ctx, person, tmp_path):
    path = _csv(tmp_path, ROWS.values())

    def die_after_first_batch(summary):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_import(_source(path), batch_size=2, progress=die_after_first_batch)
    db.session.rollback()
    assert len(_states()) == 2  # the first batch was committed, nothing more
    run_import(_source(path), batch_size=2)
    resumed = _states()
    for table in ("review_item", "legacy_account"):
        db.session.execute(db.text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
    db.session.commit()
    run_import(_source(path))
    assert resumed == _states()
    assert db.session.scalar(db.select(db.func.count()).select_from(ReviewItem)) == 4


def test_review_approve_reject_undo(ctx, person, tmp_path):
    run_import(_source(_csv(tmp_path, ROWS.values())))
    items = {i.reason: i for i in db.session.scalars(db.select(ReviewItem))}
    differs = items["id_number_name_differs"]
    review.approve(differs.id, by="admin")
    acc = db.session.get(LegacyAccount, differs.legacy_account_id)
    assert (acc.state, acc.person_id) == ("merged", person.id)
    review.undo(differs.id, by="admin")
    acc = db.session.get(LegacyAccount, differs.legacy_account_id)
    assert (acc.state, acc.person_id) == ("queued", None)
    assert db.session.get(ReviewItem, differs.id).state == "pending"
    # A row with a valid number and no candidate: approval creates the person; undo
    # disables it again.
    new = items["no_match_untrusted_source"]
    review.approve(new.id, by="admin")
    created = db.session.get(LegacyAccount, new.legacy_account_id).person_id
    review.undo(new.id, by="admin")
    assert db.session.get(Person, created).status == "merged"
    review.reject(items["weak_phone_and_name"].id, by="admin")
    with pytest.raises(review.ReviewError, match="not pending"):
        review.approve(items["weak_phone_and_name"].id, by="admin")


def test_old_password_signs_in_once_then_is_rehashed_and_forgotten(ctx, client, tmp_path):
    import hashlib

    from tests.helpers import authorize_url, form_fields, make_client

    path = tmp_path / "pw.csv"
    old_md5 = hashlib.md5("旧密码abc123".encode()).hexdigest()  # noqa: S324 - the legacy system's
    path.write_bytes(("用户编号,姓名,身份证号,密码\n"
                      f"p1,孙八,110101198501010017,{old_md5}\n").encode("gb18030"))
    fields = {"legacy_id": "用户编号", "name": "姓名", "id_number": "身份证号",
              "password_hash": "密码"}
    source = CsvSource("old-portal", fields, path=path,
                       trusted=True, password_format="md5")
    assert run_import(source).created == 1
    person = db.session.scalar(db.select(Person).where(
        Person.id_number_idx == id_number_index("110101198501010017")))
    assert person.password_hash.startswith("$legacy$md5$$")
    rp = make_client("portal", first_party=True)

    def sign_in(password):
        resp = client.get(authorize_url(rp))
        fields = form_fields(client.get(resp.headers["Location"]).get_data(as_text=True))
        return client.post("/login", data={**fields, "username": "110101198501010017",
                                           "password": password})

    assert sign_in("wrong-password").status_code == 400
    assert sign_in("旧密码abc123").status_code == 302
    db.session.refresh(person)
    assert person.password_hash.startswith("$argon2id$")
    assert db.session.scalar(db.select(LegacyAccount.password_hash).where(
        LegacyAccount.person_id == person.id)) is None


def test_legacy_scope_releases_only_the_clients_own_systems(ctx, client, person, tmp_path):
    from joserfc import jwt
    from joserfc.jwk import KeySet

    from tests.helpers import make_client, tokens_for

    run_import(_source(_csv(tmp_path, [ROWS["a1"]])))  # shebao-2012 → this person
    other = CsvSource("tax-2010", FIELDS, path=_csv(tmp_path, [f"t9,李四,{CITIZEN_ID},"],
                                                       "tax.csv"))
    run_import(other)
    rp = make_client("shebao", first_party=True, legacy_systems=["shebao-2012"])
    body = tokens_for(client, rp, scope="openid legacy")
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.get_json()["legacy_accounts"] == [{"system": "shebao-2012", "legacy_id": "a1"}]
    claims = jwt.decode(body["id_token"], KeySet.import_key_set(client.get("/jwks").get_json()),
                        algorithms=["ES256"]).claims
    assert claims["legacy_accounts"] == [{"system": "shebao-2012", "legacy_id": "a1"}]
    plain = make_client("plain", first_party=True)
    body = tokens_for(client, plain, scope="openid legacy")
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.get_json()["legacy_accounts"] == []


# -- scale: resumability inside a batch, repeated ids, organisations ---------------------

def _snapshot():
    """Each account's decision and the ID number of the person it names (ids differ
    between runs; what they point at must not)."""
    numbers = dict(db.session.execute(db.select(Person.id, Person.id_number_idx)).all())
    return ({a.legacy_id: (a.state, a.rule, numbers.get(a.person_id))
             for a in db.session.scalars(db.select(LegacyAccount))},
            sorted(db.session.scalars(db.select(Person.id_number_idx))),
            sorted(db.session.scalars(db.select(ReviewItem.reason))))


def _wipe_import(keep_person):
    for table in ("review_item", "legacy_account"):
        db.session.execute(db.text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
    db.session.execute(db.delete(Person).where(Person.id != keep_person.id))
    db.session.commit()


def _people_rows(n):
    from idp.identity import compute_check_char

    rows = []
    for i in range(n):
        body = f"3101041985{i // 28 % 12 + 1:02d}{i % 28 + 1:02d}{i % 1000:03d}"
        number = body + compute_check_char(body)
        # Every fifth row repeats the number of the one before under another name.
        if i % 5 == 4:
            number = rows[-1].split(",")[2]
        rows.append(f"k{i:03d},张{i},{number},")
    return rows + [f"k900,{'李四'},{CITIZEN_ID},"]


def test_kill_in_the_middle_of_a_batch_then_rerun_equals_one_clean_run(
        ctx, person, tmp_path, monkeypatch):
    import connectors.importer as importer

    path = _csv(tmp_path, _people_rows(40))
    clean = run_import(_source(path, trusted=True), batch_size=16)
    expected = _snapshot()
    assert clean.created > 0 and clean.queued > 0 and clean.merged == 1
    _wipe_import(person)

    real_insert, calls = importer.insert_rows, []

    def dies_in_batch_two(table, rows):
        calls.append(table.name)
        # Batch two has written its new people; the process dies before its accounts.
        if table.name == "legacy_account" and calls.count("legacy_account") == 2:
            raise KeyboardInterrupt
        return real_insert(table, rows)

    monkeypatch.setattr(importer, "insert_rows", dies_in_batch_two)
    with pytest.raises(KeyboardInterrupt):
        run_import(_source(path, trusted=True), batch_size=16)
    monkeypatch.setattr(importer, "insert_rows", real_insert)
    # Batch one stays; nothing of batch two (its people included) was kept.
    assert len(_states()) == 16
    assert db.session.scalar(db.select(db.func.count()).select_from(Person)) == 1 + sum(
        1 for s, _r, _n in _snapshot()[0].values() if s == "created")
    resumed = run_import(_source(path, trusted=True), batch_size=16)
    assert resumed.unchanged == 16 and resumed.gone == 0
    assert _snapshot() == expected


def test_a_repeated_legacy_id_counts_once_and_reruns_stay_quiet(ctx, person, tmp_path):
    rows = [ROWS["a1"], ROWS["a2"], "a2,赵六,110101900307001,13700001111"]
    path = _csv(tmp_path, rows)
    from connectors.importer import read_row

    # The repeat in a later batch (decided in this run), then in the same batch, then in
    # a later batch again (read unchanged in this run).
    first = run_import(_source(path), batch_size=1)
    assert (first.read, first.repeated, first.queued, first.merged) == (3, 1, 1, 1)
    assert "phone" not in read_row(db.session.scalar(db.select(LegacyAccount).where(
        LegacyAccount.legacy_id == "a2")))  # the first occurrence counts
    for batch_size in (1000, 1):
        again = run_import(_source(path), batch_size=batch_size)
        assert (again.unchanged, again.repeated, again.updated, again.queued) == (2, 1, 0, 0)
        assert again.gone == 0


def test_rerun_leaves_unchanged_rows_alone_and_audits_the_run(ctx, person, tmp_path):
    from idp import audit

    path = _csv(tmp_path, ROWS.values())
    first = run_import(_source(path))
    before = {a.legacy_id: (a.run_id, a.last_seen) for a in
              db.session.scalars(db.select(LegacyAccount))}
    assert {run for run, _t in before.values()} == {first.run_id}
    again = run_import(_source(path))
    db.session.expire_all()
    after = {a.legacy_id: (a.run_id, a.last_seen) for a in
             db.session.scalars(db.select(LegacyAccount))}
    assert after == before  # the run that decided each row stays on it
    audit.flush()
    entries = [e for e in db.session.scalars(db.select(audit.AuditEvent)
                                             .order_by(audit.AuditEvent.seq))
               if e.event == "legacy.import"]
    assert [e.details["run_id"] for e in entries] == [first.run_id, again.run_id]
    assert entries[0].details["rules"]["id_number_and_name"] == 1
    assert entries[1].details["unchanged"] == 5 and entries[1].details["merged"] == 0


ORG_FIELDS = {"legacy_id": "编号", "name": "名称", "id_number": "身份证号",
              "org_code": "组织机构代码", "credit_code": "统一社会信用代码"}


def _uscc(body8, region="350100"):
    from idp.identity import compute_credit_check_char, compute_org_check_char

    first17 = f"91{region}{body8}{compute_org_check_char(body8)}"
    return first17 + compute_credit_check_char(first17)


def _org_csv(tmp_path, rows, name="orgs.csv"):
    path = tmp_path / name
    path.write_bytes(("编号,名称,身份证号,组织机构代码,统一社会信用代码\n"
                      + "\n".join(rows) + "\n").encode("gbk"))
    return path


def test_organisation_rows_match_create_queue_and_rerun_idempotently(ctx, person, tmp_path):
    from idp.models import Organisation

    known = Organisation(uscc=_uscc("M0001000"), name="闽兴贸易有限公司", org_type="企业")
    db.session.add(known)
    db.session.commit()
    old = known.uscc[8:17]
    new = _uscc("MA2Y3K4C", region="110105")
    wrong_credit = new[:17] + ("0" if new[17] != "0" else "1")
    wrong_old = "12345678-" + ("0" if _uscc("12345678")[16] != "0" else "1")
    other = _uscc("L8HJ2K3M")
    rows = [
        f"o1,闽兴贸易有限公司,,,{known.uscc}",                  # by credit code
        f"o2,闽兴贸易有限公司,,{old[:8]}-{old[8]},",            # old code, dashed
        f"o3,,,{old.lower()},",                               # old code, no dash, no name
        f"o4,另一家公司,,{old},",                               # old code, another name
        f"o5,京华科技有限公司,,,{new}",                         # new, trusted source
        f"o6,某某公司,,{_uscc('87654321')[8:16]}-{_uscc('87654321')[16]},",  # old code only
        f"o7,错码公司,,,{wrong_credit}",                        # wrong check character
        f"o8,错码公司二,,{wrong_old},",                          # wrong org-code check
        f"o9,不一致公司,,{old},{other}",                         # the two codes disagree
        f"o10,,,,{_uscc('Q1W2E3R4')}",                         # new, no name
        f"p1,李四,{CITIZEN_ID},,",                             # a person in the same file
    ]
    source = CsvSource("gongshang-2009", ORG_FIELDS, path=_org_csv(tmp_path, rows),
                       trusted=True)
    first = run_import(source)
    states = {a.legacy_id: (a.state, a.rule) for a in db.session.scalars(db.select(LegacyAccount))}
    assert states == {
        "o1": ("merged", "org_credit_code"),
        "o2": ("merged", "org_code_in_credit_code"),
        "o3": ("merged", "org_code_in_credit_code"),
        "o4": ("queued", "org_code_name_differs"),
        "o5": ("created", "org_trusted_source_new"),
        "o6": ("queued", "org_code_only"),
        "o7": ("invalid", "invalid_credit_code:check_digit"),
        "o8": ("invalid", "invalid_org_code:org_code_check"),
        "o9": ("queued", "org_code_mismatch"),
        "o10": ("queued", "org_name_unknown"),
        "p1": ("merged", "id_number_and_name"),
    }
    assert (first.organisations, first.created, first.invalid) == (10, 1, 2)
    links = {a.legacy_id: (a.org_id, a.person_id) for a in
             db.session.scalars(db.select(LegacyAccount))}
    assert links["o1"] == links["o2"] == links["o3"] == (known.id, None)
    assert links["p1"] == (None, person.id)
    created = db.session.scalar(db.select(Organisation).where(Organisation.uscc == new))
    assert (created.name, created.org_type, links["o5"][0]) == ("京华科技有限公司", "企业",
                                                                created.id)
    reasons = {i.reason: i.candidates for i in db.session.scalars(db.select(ReviewItem))}
    assert reasons["org_code_name_differs"] == [known.id]
    assert set(reasons) == {"org_code_name_differs", "org_code_only", "org_code_mismatch",
                            "org_name_unknown", "invalid_credit_code:check_digit",
                            "invalid_org_code:org_code_check"}

    again = run_import(CsvSource("gongshang-2009", ORG_FIELDS,
                                 path=_org_csv(tmp_path, rows), trusted=True))
    assert (again.unchanged, again.created, again.queued, again.organisations) == (11, 0, 0, 0)
    assert db.session.scalar(db.select(db.func.count()).select_from(Organisation)) == 2
    # Another, untrusted system knows the new organisation only by its old code.
    tax_rows = [f"t1,京华科技有限公司,,{new[8:16]}-{new[16]},", f"t2,无名,,,{_uscc('T9Y8X7W6')}"]
    tax = CsvSource("shuiwu-2011", ORG_FIELDS, path=_org_csv(tmp_path, tax_rows, "tax.csv"))
    third = run_import(tax)
    assert (third.merged, third.queued) == (1, 1)
    assert db.session.scalar(db.select(LegacyAccount.org_id).where(
        LegacyAccount.legacy_id == "t1")) == created.id
    assert db.session.scalar(db.select(LegacyAccount.rule).where(
        LegacyAccount.legacy_id == "t2")) == "org_no_match_untrusted_source"


def test_entity_from_the_config_file(ctx, person, tmp_path):
    from connectors.config import load_source

    _org_csv(tmp_path, [f"e1,甲公司,,,{_uscc('AB12CD34')}", "e2,乙公司,,,",
                        f"e3,丙公司,{CITIZEN_ID},,{_uscc('EF56GH78')}"])
    config = tmp_path / "orgs.toml"
    config.write_text('[source]\nname = "minzheng"\nkind = "csv"\ntrusted = true\n'
                      'entity = "organisation"\n[fields]\nlegacy_id = "编号"\nname = "名称"\n'
                      'id_number = "身份证号"\ncredit_code = "统一社会信用代码"\n'
                      '[csv]\npath = "orgs.csv"\n', encoding="utf-8")
    summary = run_import(load_source(config))
    assert summary.organisations == 3
    # An ID number in an organisation source is not read as a person.
    assert _states() == {"e1": ("created", "org_trusted_source_new"),
                         "e2": ("queued", "org_no_code"),
                         "e3": ("created", "org_trusted_source_new")}
