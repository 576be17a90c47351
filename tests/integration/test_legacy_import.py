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
