"""Review items of organisations' legacy accounts (issue 4): approve links the single
candidate organisation or creates one from the row's valid credit code, merge links
to an organisation chosen by its credit code (GB 32100), reject, and undo puts back
exactly what the decision changed — through ``connectors.review``, ``idp merge`` and
the admin console and its API, each decision audited."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from connectors import review
from connectors.csv_source import CsvSource
from connectors.importer import run_import
from idp import audit
from idp.extensions import db
from idp.identity import compute_credit_check_char, compute_org_check_char
from idp.models import LegacyAccount, Membership, Organisation, ReviewItem
from tests.helpers import CITIZEN_ID, form_fields, make_person
from tests.integration.test_admin_console import _admin, sign_in

FIELDS = {"legacy_id": "编号", "name": "名称", "id_number": "身份证号",
          "org_code": "组织机构代码", "credit_code": "统一社会信用代码"}


def _uscc(body8: str, region: str = "350100", kind: str = "91") -> str:
    first17 = f"{kind}{region}{body8}{compute_org_check_char(body8)}"
    return first17 + compute_credit_check_char(first17)


KNOWN = _uscc("M0001000")
NEW = _uscc("MA2Y3K4C", region="110105")
NAMELESS = _uscc("Q1W2E3R4")
SOLE = _uscc("L8HJ2K3M", kind="92")  # 个体工商户: the code stands for a natural person
WRONG = NEW[:17] + ("0" if NEW[17] != "0" else "1")
UNKNOWN_OLD = _uscc("87654321")[8:17]


@pytest.fixture
def known(ctx):
    """A registered organisation whose legal representative is the test citizen."""
    rep = make_person()
    org = Organisation(uscc=KNOWN, name="闽兴贸易有限公司", org_type="企业")
    db.session.add(org)
    db.session.flush()
    db.session.add(Membership(org_id=org.id, person_id=rep.id, role="legal_rep",
                              scopes=["all"], appointed_by="registration"))
    db.session.commit()
    return org


def _import(tmp_path) -> dict[str, int]:
    """An untrusted tax system's organisations, all queued; review item id by legacy id."""
    rows = [
        f"t1,另一家公司,,{KNOWN[8:16]}-{KNOWN[16]},",   # old code of KNOWN, other name
        f"t2,京华科技有限公司,,,{NEW}",                    # valid, new: nobody to link to
        f"t3,错码公司,,,{WRONG}",                          # wrong check character
        f"t4,某某公司,,{UNKNOWN_OLD},",                    # an old code nobody embeds
        f"t5,,,,{NAMELESS}",                              # valid, new, no name anywhere
        f"t6,张三小吃店,,,{SOLE}",                         # a sole trader
        f"p1,李斯,{CITIZEN_ID},,",                         # a person in the same file
    ]
    path = tmp_path / "tax.csv"
    path.write_bytes(("编号,名称,身份证号,组织机构代码,统一社会信用代码\n"
                      + "\n".join(rows) + "\n").encode("gbk"))
    run_import(CsvSource("shuiwu-2011", FIELDS, path=path))
    pairs = db.session.execute(db.select(LegacyAccount.legacy_id, ReviewItem.id).join(
        ReviewItem, ReviewItem.legacy_account_id == LegacyAccount.id))
    return dict(pairs.all())


def _account(item_id: int) -> LegacyAccount:
    db.session.expire_all()
    return db.session.get(LegacyAccount, db.session.get(ReviewItem, item_id).legacy_account_id)


def _entries(event: str) -> list[dict]:
    audit.flush()
    return [e for e in audit.export(0) if e["event"] == event]


def _org(code: str) -> Organisation | None:
    return db.session.scalar(db.select(Organisation).where(Organisation.uscc == code))


# -- the review functions --------------------------------------------------------------


def test_approve_links_the_single_candidate_and_undo_unlinks(ctx, known, tmp_path):
    items = _import(tmp_path)
    assert review.kind(items["t1"]) == "organisation"
    assert db.session.get(ReviewItem, items["t1"]).candidates == [known.id]
    review.approve(items["t1"], by="admin-1", note="改过名")
    account = _account(items["t1"])
    assert (account.state, account.org_id, account.person_id) == ("merged", known.id, None)
    entry = _entries("legacy.approve")[0]
    assert entry["subject"] == f"org:{KNOWN}" and entry["actor"] == "admin-1"
    assert entry["details"]["org"] == known.id and entry["details"]["created_org"] is False
    assert (entry["details"]["rule"], entry["details"]["legacy_id"]) == (
        "org_code_name_differs", "t1")
    review.undo(items["t1"], by="admin-1")
    account = _account(items["t1"])
    assert (account.state, account.org_id) == ("queued", None)
    assert db.session.get(ReviewItem, items["t1"]).state == "pending"
    assert _org(KNOWN) is not None  # an organisation the approval found stays, of course
    assert _entries("legacy.undo")[0]["details"]["undid"] == "approved"


def test_approve_creates_from_a_valid_code_and_undo_removes_it_unless_relied_on(
        ctx, known, tmp_path):
    items = _import(tmp_path)
    review.approve(items["t2"], by="admin-1")
    created = _org(NEW)
    assert (created.name, created.org_type, created.status) == ("京华科技有限公司", "企业",
                                                                "active")
    assert _account(items["t2"]).org_id == created.id
    assert _entries("legacy.approve")[0]["details"]["created_org"] is True
    review.undo(items["t2"], by="admin-1")
    assert _org(NEW) is None and _account(items["t2"]).org_id is None
    assert _entries("legacy.undo")[0]["details"]["removed_org"] is True

    # Approved again, and somebody was appointed to act for it meanwhile: undo unlinks
    # the legacy account but keeps the organisation those people rely on.
    review.approve(items["t2"], by="admin-1")
    created = _org(NEW)
    db.session.add(Membership(org_id=created.id, person_id=known.id, role="agent",
                              scopes=["tax"], appointed_by="admin-1"))
    db.session.commit()
    review.undo(items["t2"], by="admin-1")
    assert _org(NEW) is not None and _account(items["t2"]).org_id is None
    assert _entries("legacy.undo")[1]["details"]["kept_created_org"] is True
    # It exists now, so approving again must not make a second one.
    with pytest.raises(review.ReviewError, match="exists now: merge into it"):
        review.approve(items["t2"], by="admin-1")


def test_approve_refuses_what_it_cannot_decide_alone(ctx, known, tmp_path):
    items = _import(tmp_path)
    for legacy_id in ("t3", "t4"):  # invalid credit code; old code only
        with pytest.raises(review.ReviewError, match="no valid credit code"):
            review.approve(items[legacy_id], by="admin-1")
    with pytest.raises(review.ReviewError, match="name is neither in the row"):
        review.approve(items["t5"], by="admin-1")
    with pytest.raises(review.InvalidTarget, match="organisation's"):
        review.approve(items["t1"], by="admin-1", person_id=known.id)
    with pytest.raises(review.InvalidTarget, match="person's"):
        review.approve(items["p1"], by="admin-1", uscc=KNOWN)
    count = db.session.scalar(db.select(db.func.count()).select_from(Organisation))
    assert count == 1
    assert {db.session.get(ReviewItem, i).state for i in items.values()} == {"pending"}


def test_merge_into_an_organisation_by_credit_code_then_undo(ctx, known, tmp_path):
    items = _import(tmp_path)
    bad = items["t3"]
    assert _account(bad).state == "invalid"
    with pytest.raises(review.InvalidTarget, match="invalid credit code"):
        review.merge(bad, by="admin-1", uscc=WRONG)
    with pytest.raises(review.ReviewError, match="no organisation with this credit code"):
        review.merge(bad, by="admin-1", uscc=NEW)
    with pytest.raises(review.InvalidTarget):
        review.merge(bad, by="admin-1", person_id=known.id)
    # Any accepted spelling of the code names the organisation.
    review.merge(bad, by="admin-1", uscc=f" {KNOWN.lower()} ", note="同一企业")
    account = _account(bad)
    assert (account.state, account.org_id) == ("merged", known.id)
    entry = _entries("legacy.merge")[0]
    assert entry["subject"] == f"org:{KNOWN}" and entry["details"]["note"] == "同一企业"
    review.undo(bad, by="admin-1")
    account = _account(bad)
    assert (account.state, account.org_id) == ("invalid", None)
    known.status = "closed"
    db.session.commit()
    with pytest.raises(review.ReviewError, match="the organisation is closed"):
        review.merge(bad, by="admin-1", uscc=KNOWN)


def test_merge_after_an_approval_that_created_one_undoes_both(ctx, known, tmp_path):
    items = _import(tmp_path)
    review.approve(items["t2"], by="admin-1")
    assert _org(NEW) is not None
    review.merge(items["t2"], by="admin-1", uscc=KNOWN)
    assert _account(items["t2"]).org_id == known.id
    review.undo(items["t2"], by="admin-1")
    account = _account(items["t2"])
    assert (account.state, account.org_id, _org(NEW)) == ("queued", None, None)
    assert _entries("legacy.undo")[0]["details"]["undid"] == "merged"


def test_reject_and_undo(ctx, known, tmp_path):
    items = _import(tmp_path)
    review.reject(items["t4"], by="admin-1", note="不是我们的企业")
    assert _account(items["t4"]).state == "rejected"
    with pytest.raises(review.ReviewError, match="not pending"):
        review.approve(items["t4"], by="admin-1")
    review.undo(items["t4"], by="admin-1")
    assert (_account(items["t4"]).state, db.session.get(ReviewItem, items["t4"]).state) == (
        "queued", "pending")
    assert [e["details"]["legacy_id"] for e in _entries("legacy.reject")] == ["t4"]


# -- idp merge -------------------------------------------------------------------------


@pytest.fixture
def cli(ctx, monkeypatch):
    """``idp merge`` against this test's database (SQLite file or PostgreSQL)."""
    from idp.cli import main

    monkeypatch.setenv("IDP_INSTANCE_PATH", ctx.instance_path)
    for var in ("DATABASE_URL", "REDIS_URL", "IDP_DATABASE_URL", "IDP_REDIS_URL",
                "IDP_KEK", "IDP_REDIS_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    if ctx.config.get("REDIS_URL"):
        monkeypatch.setenv("DATABASE_URL", ctx.config["DATABASE_URL"])
        monkeypatch.setenv("REDIS_URL", ctx.config["REDIS_URL"])
        monkeypatch.setenv("IDP_REDIS_PREFIX", ctx.config["REDIS_PREFIX"])
        monkeypatch.setenv("IDP_KEK", ctx.config["KEK"])
    runner = CliRunner()

    def run(*args):
        db.session.commit()  # nothing of this test's session stands in the command's way
        res = runner.invoke(main, ["merge", *args, "--json"], catch_exceptions=False)
        db.session.expire_all()
        return res.exit_code, json.loads(res.stdout or res.stderr)

    return run


def test_cli_decides_organisation_items(cli, known, tmp_path):
    items = _import(tmp_path)
    code, listed = cli("list")
    assert code == 0 and listed["total"] == len(listed["items"]) and not listed["truncated"]
    listed = listed["items"]
    rows = {r["legacy_id"]: r for r in listed}
    assert rows["t2"]["kind"] == "organisation" and rows["t2"]["credit_code"] == NEW
    assert rows["t2"]["name"] == "京华科技有限公司"
    assert rows["t6"]["credit_code"].startswith("92*") and SOLE not in json.dumps(listed)
    assert cli("approve", str(items["t1"])) == (0, {"id": items["t1"], "state": "approved"})
    assert _account(items["t1"]).org_id == known.id
    assert cli("approve", str(items["t2"]))[1]["state"] == "approved"
    assert _org(NEW) is not None
    code, out = cli("into", str(items["t3"]), WRONG)
    assert code == 1 and "invalid credit code" in out["error"]
    code, out = cli("into", str(items["t3"]), KNOWN)
    assert (code, out["state"]) == (0, "merged") and _account(items["t3"]).org_id == known.id
    code, out = cli("approve", str(items["t4"]), "--person", known.id)
    assert code == 1 and "credit code" in out["error"]
    assert cli("approve", str(items["t4"]), "--org", KNOWN)[1]["state"] == "approved"
    assert cli("reject", str(items["t5"]))[1]["state"] == "rejected"
    for legacy_id in ("t1", "t2", "t3", "t4", "t5"):
        assert cli("undo", str(items[legacy_id]))[1]["state"] == "pending"
    assert _org(NEW) is None
    assert {_account(i).org_id for i in items.values()} == {None}
    events = [e["event"] for e in (_entries("legacy.approve") + _entries("legacy.merge")
                                   + _entries("legacy.reject") + _entries("legacy.undo"))]
    assert sorted(events).count("legacy.undo") == 5 and events.count("legacy.approve") == 3
    assert all(e["actor"].startswith("cli:") for e in _entries("legacy.merge"))


# -- the admin console and its API -----------------------------------------------------


def test_console_shows_organisations_side_by_side_with_person_data_masked(
        client, ctx, known, tmp_path):
    items = _import(tmp_path)
    sign_in(client, ctx, _admin())
    queue = client.get("/admin/review?state=all").get_data(as_text=True)
    assert NEW in queue and "京华科技有限公司" in queue
    html = client.get(f"/admin/review/{items['t1']}").get_data(as_text=True)
    # The row and its candidate: names and codes in full, the legal representative not.
    assert "另一家公司" in html and "闽兴贸易有限公司" in html and KNOWN in html
    assert f'data-org="{known.id}"' in html and "李*" in html
    assert "李四" not in html and CITIZEN_ID not in html
    for form in re.findall(r'<form method="post".*?</form>', html, re.S):
        assert 'name="csrf_token"' in form
    assert {"approve", "merge", "search", "reject"} <= set(re.findall(r'<form[^>]* id="(\w+)"',
                                                                       html))
    sole = client.get(f"/admin/review/{items['t6']}").get_data(as_text=True)
    assert SOLE not in sole and "张三小吃店" not in sole and "张****" in sole

    token = form_fields(html)["csrf_token"]
    bad = items["t3"]
    for code, status in ((WRONG, 400), (NEW, 404)):
        resp = client.post(f"/admin/review/{bad}/search", data={"csrf_token": token,
                                                                  "uscc": code})
        assert resp.status_code == status
    found = client.post(f"/admin/review/{bad}/search",
                        data={"csrf_token": token, "uscc": KNOWN.lower()})
    assert found.status_code == 200
    assert f'name="org" value="{known.id}"' in found.get_data(as_text=True)
    assert client.post(f"/admin/review/{bad}/merge",
                       data={"csrf_token": token}).status_code == 400
    resp = client.post(f"/admin/review/{bad}/merge",
                       data={"csrf_token": token, "org": known.id, "note": "同一企业"})
    assert resp.status_code == 302
    assert "关联到所选组织" in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert _account(bad).org_id == known.id
    # Approving an item with several or no candidates and no valid code says why.
    refused = client.post(f"/admin/review/{items['t4']}/approve", data={"csrf_token": token})
    assert refused.status_code == 409 and "统一社会信用代码" in refused.get_data(as_text=True)
    resp = client.post(f"/admin/review/{items['t1']}/approve", data={"csrf_token": token})
    assert resp.status_code == 302 and _account(items["t1"]).org_id == known.id
    undone = client.post(f"/admin/review/{items['t1']}/undo", data={"csrf_token": token})
    assert undone.status_code == 302 and _account(items["t1"]).org_id is None


def test_api_decides_organisation_items(client, ctx, known, tmp_path):
    items = _import(tmp_path)
    admin = _admin()
    sign_in(client, ctx, admin)
    h = {"X-CSRFToken": client.get("/admin/api/csrf").get_json()["csrf_token"]}
    detail = client.get(f"/admin/api/review/{items['t1']}").get_json()
    assert detail["kind"] == "organisation" and detail["item"]["kind"] == "organisation"
    [card] = detail["candidates"]
    assert (card["id"], card["uscc"], card["name"], card["legal_rep"]) == (
        known.id, KNOWN, "闽兴贸易有限公司", "李*")
    assert CITIZEN_ID not in json.dumps(detail) and "李四" not in json.dumps(detail,
                                                                           ensure_ascii=False)
    t2 = f"/admin/api/review/{items['t2']}"
    resp = client.post(t2 + "/approve", json={"person_id": known.id}, headers=h)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"
    resp = client.post(t2 + "/approve", json={"note": "新设企业"}, headers=h)
    assert resp.status_code == 200 and resp.get_json() == {
        "id": items["t2"], "state": "approved", "kind": "organisation", "merge_record": None}
    linked = client.get(t2).get_json()["linked"]
    assert (linked["uscc"], linked["name"]) == (NEW, "京华科技有限公司")
    assert client.post(t2 + "/undo", headers=h).get_json()["state"] == "pending"
    assert _org(NEW) is None
    t3 = f"/admin/api/review/{items['t3']}"
    assert client.post(t3 + "/merge", json={}, headers=h).status_code == 400
    resp = client.post(t3 + "/merge", json={"uscc": WRONG}, headers=h)
    assert resp.status_code == 400 and "invalid credit code" in resp.get_json()[
        "error_description"]
    resp = client.post(t3 + "/merge", json={"uscc": NEW}, headers=h)
    assert resp.status_code == 409 and resp.get_json()["error"] == "conflict"
    assert client.post(t3 + "/merge", json={"uscc": 91}, headers=h).status_code == 400
    resp = client.post(t3 + "/merge", json={"uscc": KNOWN}, headers=h)
    assert resp.get_json()["state"] == "merged" and _account(items["t3"]).org_id == known.id
    resp = client.post(f"/admin/api/review/{items['t5']}/reject", json={"note": "空壳"},
                       headers=h)
    assert resp.get_json()["state"] == "rejected"
    assert client.post(t3 + "/undo", headers=h).get_json()["state"] == "pending"
    # A person's item takes no credit code, and an organisation's no person.
    resp = client.post(f"/admin/api/review/{items['p1']}/merge", json={"uscc": KNOWN},
                       headers=h)
    assert resp.status_code == 400 and "person" in resp.get_json()["error_description"]
    assert {e["actor"] for e in _entries("legacy.merge") + _entries("legacy.reject")} == {
        admin.id}
    assert [e["subject"] for e in _entries("legacy.merge")] == [f"org:{KNOWN}"]
