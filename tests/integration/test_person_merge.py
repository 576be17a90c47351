"""Merging two persons who are one citizen (issue 4): what moves, what is refused, that
undo restores the tables exactly, the audit trail, the review queue's merge of an
already-linked account, and the ``idp merge`` / ``idp admin`` commands."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from connectors import merge, review
from connectors.csv_source import CsvSource
from connectors.importer import run_import
from idp import audit
from idp.extensions import db
from idp.models import (
    AdminRole,
    Consent,
    LegacyAccount,
    Membership,
    MergeRecord,
    Organisation,
    Person,
    RefreshToken,
    ReviewItem,
    TotpCredential,
    WebAuthnCredential,
)
from idp.store import store
from tests.helpers import make_client, make_person

NUMBER_18 = "110101199003070011"
NUMBER_15 = "110101900307001"  # the same citizen's pre-1999 number
OTHER = "11010519491231002X"
OLD_HASH = "$argon2id$old"  # noqa: S105 - a stand-in, not a real hash
SNAPSHOT = {"person": ("updated_at",), "legacy_account": (), "consent": (),
            "membership": (), "totp_credential": (), "webauthn_credential": (),
            "refresh_token": ("revoked_at",)}


def _legacy_person(number: str, name: str, password_hash: str | None = OLD_HASH) -> Person:
    """A person as an older registration stored them: the number as typed then (a 15-digit
    one has its own blind index, so both accounts could exist)."""
    person = Person(id_kind="resident", name=name, password_hash=password_hash,
                    assurance_level="L2")
    person.id_number = number
    db.session.add(person)
    db.session.commit()
    return person


def _snapshot() -> dict:
    out = {}
    for table, skip in SNAPSHOT.items():
        rows = db.session.execute(db.text(f"SELECT * FROM {table}")).mappings()  # noqa: S608
        out[table] = sorted(json.dumps({k: v for k, v in r.items() if k not in skip},
                                       sort_keys=True, default=str) for r in rows)
    return out


def _belongings(person: Person, client_id: str, org: Organisation) -> dict:
    """One row of each kind for ``person``."""
    legacy = LegacyAccount(source="shebao", legacy_id=f"L-{person.id[:6]}", fingerprint="f",
                           row_enc="x", person_id=person.id, state="merged", rule="r",
                           run_id="run")
    member = Membership(org_id=org.id, person_id=person.id, role="agent", scopes=["tax"])
    totp = TotpCredential(person_id=person.id, secret_enc="s", confirmed_at=time.time())
    key = WebAuthnCredential(person_id=person.id, credential_id=f"cred-{person.id[:8]}",
                             public_key="pk", level="L3")
    token = RefreshToken(token_hash=RefreshToken.digest(f"rt-{person.id}"),
                         family_id=f"f{person.id[:24]}", client_id=client_id,
                         person_id=person.id, scope="openid offline_access",
                         auth_time=int(time.time()), acr="L2", amr=["pwd"],
                         expires_at=time.time() + 3600)
    db.session.add_all([legacy, member, totp, key, token])
    db.session.commit()
    return {"legacy": legacy.id, "membership": member.id, "totp": totp.id, "webauthn": key.id,
            "grant": token.family_id}


@pytest.fixture
def pair(ctx):
    survivor = make_person(NUMBER_18, "赵六", "Survivor-Pass-1", phone="13700001111")
    absorbed = _legacy_person(NUMBER_15, "赵六")
    rp = make_client("rp1")
    make_client("rp2")
    org = Organisation(uscc="91350100M000100Y43", name="某某公司")
    db.session.add(org)
    db.session.commit()
    db.session.add_all([
        Consent(person_id=survivor.id, client_id="rp1", scopes="openid profile",
                granted_at=100.0),
        Consent(person_id=absorbed.id, client_id="rp1", scopes="openid phone",
                granted_at=200.0),
        Consent(person_id=absorbed.id, client_id="rp2", scopes="openid", granted_at=300.0)])
    db.session.commit()
    mine = _belongings(survivor, rp.client_id, org)
    theirs = _belongings(absorbed, rp.client_id, org)
    return survivor.id, absorbed.id, mine, theirs


def test_merge_moves_everything_and_undo_restores_exactly(ctx, pair):
    survivor, absorbed, mine, theirs = pair
    store().append(f"gjti:{theirs['grant']}", "jti-of-absorbed", 600)
    before = _snapshot()
    record = merge.merge_persons(survivor, absorbed, actor="admin-1", reason="同一人两个账号")
    assert not record.forced
    db.session.expire_all()
    gone = db.session.get(Person, absorbed)
    assert gone.status == "merged" and gone.password_hash is None
    assert record.absorbed_password_hash == "$argon2id$old"
    assert merge.merged_into(absorbed) == survivor and merge.merged_into(survivor) is None
    for model, key in ((LegacyAccount, "legacy"), (Membership, "membership"),
                       (TotpCredential, "totp"), (WebAuthnCredential, "webauthn")):
        assert db.session.get(model, theirs[key]).person_id == survivor
        assert db.session.get(model, mine[key]).person_id == survivor
    consents = {c.client_id: c.scopes for c in db.session.scalars(
        db.select(Consent).where(Consent.person_id == survivor))}
    assert consents == {"rp1": "openid phone profile", "rp2": "openid"}
    assert db.session.scalar(db.select(Consent).where(Consent.person_id == absorbed)) is None
    # The absorbed person's grant is revoked (refresh token and access token); the
    # survivor's is not.
    tokens = {t.family_id: t.revoked_at for t in db.session.scalars(db.select(RefreshToken))}
    assert tokens[theirs["grant"]] is not None and tokens[mine["grant"]] is None
    assert store().get("revoked:jti-of-absorbed") == 1
    assert merge.counts(record).__dict__ == {
        "legacy_account": 1, "membership": 1, "totp_credential": 1, "webauthn_credential": 1,
        "consent": 2, "revoked_grants": 1}
    survivor_row = db.session.get(Person, survivor)
    assert survivor_row.password_hash.startswith("$argon2id$v=")  # the survivor's own

    merge.undo_merge(record.id, actor="admin-2")
    db.session.expire_all()
    assert _snapshot() == before
    assert db.session.get(Person, absorbed).status == "active"
    assert merge.merged_into(absorbed) is None
    assert db.session.get(MergeRecord, record.id).undone_by == "admin-2"
    with pytest.raises(merge.MergeError, match="already undone"):
        merge.undo_merge(record.id, actor="admin-2")

    audit.flush()
    entries = [e for e in audit.export(0) if e["event"].startswith("person.merge")]
    assert [e["event"] for e in entries] == ["person.merged", "person.merge_undone"]
    assert entries[0]["actor"] == "admin-1" and entries[1]["actor"] == "admin-2"
    assert entries[0]["details"]["absorbed"] == absorbed
    assert entries[0]["details"]["survivor"] == survivor
    assert entries[0]["details"]["counts"]["consent"] == 2


def test_refusals(ctx, pair):
    survivor, absorbed, _mine, _theirs = pair
    other = make_person(OTHER, "李四", "Other-Pass-123", phone=None)
    with pytest.raises(merge.MergeError, match="itself"):
        merge.merge_persons(survivor, survivor, actor="a")
    with pytest.raises(merge.MergeError, match="no person"):
        merge.merge_persons(survivor, "nobody", actor="a")
    with pytest.raises(merge.MergeError, match="differ"):
        merge.merge_persons(survivor, other.id, actor="a")
    with pytest.raises(merge.MergeError, match="reason"):
        merge.merge_persons(survivor, other.id, actor="a", force=True, reason="  ")
    locked = db.session.get(Person, other.id)
    locked.status = "locked"
    db.session.commit()
    with pytest.raises(merge.MergeError, match="locked"):
        merge.merge_persons(other.id, survivor, actor="a", force=True, reason="x")
    first = merge.merge_persons(survivor, absorbed, actor="a")
    with pytest.raises(merge.MergeError, match="already merged"):
        merge.merge_persons(survivor, absorbed, actor="a")
    with pytest.raises(merge.MergeError, match="merged"):
        merge.merge_persons(absorbed, survivor, actor="a")
    # A refused merge changed nothing.
    assert db.session.scalar(db.select(db.func.count()).select_from(MergeRecord)) == 1
    # Forced, with a reason: allowed and marked; undo must go newest first.
    locked.status = "active"
    db.session.commit()
    forced = merge.merge_persons(survivor, other.id, actor="a", force=True,
                                 reason="户籍迁移后重新编号 110105194912310021")
    assert forced.forced and "110105194912310021" not in forced.reason  # masked
    # A later merge involves the survivor: the first cannot be undone before it.
    with pytest.raises(merge.MergeError, match="undo it first"):
        merge.undo_merge(first.id, actor="a")
    merge.undo_merge(forced.id, actor="a")
    merge.undo_merge(first.id, actor="a")


def test_merge_is_all_or_nothing(ctx, pair, monkeypatch):
    survivor, absorbed, _mine, _theirs = pair
    before = _snapshot()

    def broken(_row):
        raise RuntimeError("disk full")

    monkeypatch.setattr(merge, "_consent_row", broken)
    with pytest.raises(RuntimeError):
        merge.merge_persons(survivor, absorbed, actor="a")
    db.session.expire_all()
    assert _snapshot() == before
    assert db.session.scalar(db.select(db.func.count()).select_from(MergeRecord)) == 0


def test_absorbed_refresh_token_stops_working(ctx, pair, client):
    survivor, absorbed, _mine, theirs = pair
    rp_secret = "s3cret-for-rp3-client"
    from tests.helpers import RP

    make_client("rp3", secret=rp_secret)
    row = db.session.scalar(db.select(RefreshToken).where(
        RefreshToken.family_id == theirs["grant"]))
    row.client_id = "rp3"
    db.session.commit()
    rp = RP("rp3", rp_secret)
    merge.merge_persons(survivor, absorbed, actor="a")
    resp = client.post("/token", data={"grant_type": "refresh_token",
                                       "refresh_token": f"rt-{absorbed}"}, headers=rp.basic)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def test_review_merge_of_an_already_linked_account_merges_the_persons(ctx, tmp_path):
    survivor = make_person(NUMBER_18, "赵六", "Survivor-Pass-1", phone=None)
    absorbed = _legacy_person(NUMBER_15, "赵六")
    path = tmp_path / "old.csv"
    path.write_bytes(f"用户编号,姓名,身份证号\nz1,赵陆,{NUMBER_15}\n".encode())
    run_import(CsvSource("tax-2010", {"legacy_id": "用户编号", "name": "姓名",
                                      "id_number": "身份证号"}, path=path))
    item = db.session.scalar(db.select(ReviewItem))
    assert item.reason == "id_number_name_differs"
    review.approve(item.id, by="admin-1", person_id=absorbed.id)
    before = _snapshot()
    review.merge(item.id, by="admin-1", person_id=survivor.id, note="同一人")
    db.session.expire_all()
    item = db.session.get(ReviewItem, item.id)
    account = db.session.get(LegacyAccount, item.legacy_account_id)
    assert item.state == "merged" and account.person_id == survivor.id
    assert db.session.get(Person, absorbed.id).status == "merged"
    assert item.outcome["merge_record"]
    review.undo(item.id, by="admin-1")
    db.session.expire_all()
    assert db.session.get(Person, absorbed.id).status == "active"
    assert db.session.get(ReviewItem, item.id).state == "pending"
    assert db.session.get(LegacyAccount, account.id).person_id is None
    after = _snapshot()
    # Everything but the account's own link (the undo went back before the approval).
    assert after["consent"] == before["consent"]
    assert after["membership"] == before["membership"]
    with pytest.raises(review.ReviewError, match="differ"):
        other = make_person(OTHER, "李四", "Other-Pass-123", phone=None)
        review.approve(item.id, by="admin-1", person_id=absorbed.id)
        review.merge(item.id, by="admin-1", person_id=other.id)
    db.session.rollback()
    audit.flush()
    events = [e["event"] for e in audit.export(0)]
    assert events.count("person.merged") == 1 and events.count("person.merge_undone") == 1
    assert "legacy.merge" in events and "legacy.undo" in events


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def cli(ctx, monkeypatch):
    """The ``idp`` command running against this test's database."""
    import contextlib

    from idp import cli as cli_mod

    monkeypatch.setattr(cli_mod, "app_context", lambda: contextlib.nullcontext())
    from admin import cli as admin_cli
    from idp.cli import merge as merge_cli

    monkeypatch.setattr(admin_cli, "app_context", lambda: contextlib.nullcontext())
    monkeypatch.setattr(merge_cli, "app_context", lambda: contextlib.nullcontext())

    def run(*args, code=0):
        result = CliRunner().invoke(cli_mod.main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return run


def test_cli_merge_persons_and_undo(cli, pair):
    survivor, absorbed, _mine, _theirs = pair
    out = json.loads(cli("merge", "persons", survivor, absorbed, "--json").stdout)
    assert out["counts"]["legacy_account"] == 1 and out["absorbed"] == absorbed
    err = cli("merge", "persons", survivor, absorbed, "--json", code=1)
    assert "already merged" in err.stderr
    undone = json.loads(cli("merge", "undo-persons", str(out["id"]), "--json").stdout)
    assert undone["undone_at"] is not None
    db.session.expire_all()
    assert db.session.get(Person, absorbed).status == "active"
    other = make_person(OTHER, "李四", "Other-Pass-123", phone=None)
    assert "differ" in cli("merge", "persons", survivor, other.id, code=1).stderr
    forced = json.loads(cli("merge", "persons", survivor, other.id, "--force", "--reason",
                            "核实为同一人", "--json").stdout)
    assert forced["forced"] is True


def test_cli_admin_roles(cli, ctx):
    person = make_person(OTHER, "李四", "Other-Pass-123", phone=None)
    out = json.loads(cli("admin", "grant", OTHER.lower(), "--role", "reviewer", "--json").stdout)
    assert out == {"person_id": person.id, "role": "reviewer"}
    cli("admin", "grant", OTHER, "--role", "admin")
    listing = json.loads(cli("admin", "list", "--json").stdout)
    assert {r["role"] for r in listing} == {"reviewer", "admin"}
    assert all(r["id_number"] == "110105********002X" and r["name"] == "李*" for r in listing)
    assert OTHER not in cli("admin", "list").stdout
    assert json.loads(cli("admin", "revoke", OTHER, "--role", "admin", "--json").stdout) == {
        "revoked": ["admin"]}
    assert {r.role for r in db.session.scalars(db.select(AdminRole))} == {"reviewer"}
    assert "invalid ID number" in cli("admin", "grant", "12345", "--role", "admin",
                                      code=1).stderr
    # a bad option value fails like any other error: one line, exit 1 (issue 12)
    assert "--role" in cli("admin", "grant", OTHER, "--role", "root", code=1).stderr
    audit.flush()
    events = [e["event"] for e in audit.export(0)]
    assert events.count("admin.role_granted") == 2 and "admin.role_revoked" in events
