"""The console's pages for issue 12 as an operator uses them (plain form posts with
CSRF): the review queue at scale (filters, counts, bulk decisions confirmed, audited and
undone, plain rule names, evidence that shows what differs), people, relying parties,
the audit log and keys."""

from __future__ import annotations

import re

import pytest

from admin import evidence
from idp import audit
from idp.extensions import db
from idp.models import AdminRole, Client, Person, ReviewItem
from tests.helpers import CITIZEN_ID, form_fields, make_client, make_person
from tests.integration.test_admin_console import _import, sign_in

STAFF_ID = "110105199003071239"


def _staff(ctx, client, role):
    person = make_person(STAFF_ID, "管理员甲", "Admin-Pass-2026", phone="13800138000")
    person.assurance_level = "L3"
    db.session.add(AdminRole(person_id=person.id, role=role, granted_by="test"))
    db.session.commit()
    sign_in(client, ctx, person)
    return person


def _token(client, path):
    return form_fields(client.get(path).get_data(as_text=True))["csrf_token"]


def _events(name):
    audit.flush()
    return [e for e in audit.export(0) if e["event"] == name]


# -- review queue at scale --------------------------------------------------------------


def test_queue_bulk_reject_is_confirmed_audited_and_undoable(client, ctx, tmp_path):
    make_person()
    _import(tmp_path, [f"t{i},王{i},,1360000{i:04d}" for i in range(30)], source="tax-2010")
    _import(tmp_path)
    _staff(ctx, client, "reviewer")
    html = client.get("/admin/review?source=tax-2010").get_data(as_text=True)
    assert "共 30 项" in html and "第 1 / 2 页" in html
    assert "只有手机号码和姓名相符" in html or "没有匹配的账号" in html  # plain rule names
    token = form_fields(html)["csrf_token"]
    url = "/admin/review/bulk?state=pending&source=tax-2010"
    # unconfirmed, or a count that no longer matches: nothing happens
    client.post(url, data={"csrf_token": token, "action": "reject", "expected": "30"})
    client.post(url, data={"csrf_token": token, "action": "reject", "expected": "29",
                           "confirm": "1"})
    assert db.session.scalar(db.select(db.func.count()).select_from(ReviewItem).where(
        ReviewItem.state == "rejected")) == 0
    resp = client.post(url, data={"csrf_token": token, "action": "reject", "expected": "30",
                                  "confirm": "1", "note": "测试数据"}, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "成功 30 项" in page and 'id="undo-batch"' in page
    states = dict(db.session.execute(db.select(ReviewItem.state, db.func.count())
                                     .group_by(ReviewItem.state)).all())
    assert states["rejected"] == 30 and states["pending"] == 3  # the other source untouched
    entry = _events("admin.review.bulk")[-1]
    assert entry["details"]["done"] == 30 and entry["details"]["filter"]["source"] == "tax-2010"
    undo = re.search(r'action="(/admin/review/bulk/[0-9a-f]+/undo)"', page).group(1)
    client.post(undo, data={"csrf_token": token})
    assert db.session.scalar(db.select(db.func.count()).select_from(ReviewItem).where(
        ReviewItem.state == "pending")) == 33
    assert _events("admin.review.bulk_undone")[-1]["details"]["undone"] == 30


def test_queue_filters_by_date_and_legacy_id(client, ctx, tmp_path):
    make_person()
    _import(tmp_path, [f"t{i},王{i},,1360000{i:04d}" for i in range(5)], source="tax-2010")
    _staff(ctx, client, "reviewer")
    assert client.get("/admin/review?q=t3").get_data(as_text=True).count('data-item="') == 1
    assert client.get("/admin/review?since=2999-01-01").get_data(as_text=True).count(
        'data-item="') == 0
    assert client.get("/admin/review?since=2000-01-01&until=2999-01-01").get_data(
        as_text=True).count('data-item="') == 5
    assert client.get("/admin/review?since=not-a-date").status_code == 200


def test_evidence_shows_what_differs_and_nothing_more(ctx):
    person = make_person(name="张三")
    diffs = {d.field: d for d in evidence.compare(
        {"name": "张叁", "id_number": CITIZEN_ID[:-2] + "1X", "phone": "139 1234 5670"}, person)}
    name = diffs["name"]
    assert not name.same
    assert [(p.text, p.changed) for p in name.legacy] == [("张", False), ("叁", True)]
    assert [(p.text, p.changed) for p in name.account] == [("张", False), ("三", True)]
    number = diffs["id_number"]
    # shared digits masked as usual (head 6, tail 4); the differing one shown on both sides
    assert "".join(p.text for p in number.legacy) == "110105********001X"
    assert "".join(p.text for p in number.account) == "110105********002X"
    assert [p.text for p in number.legacy if p.changed] == ["1"]
    assert [p.text for p in number.account if p.changed] == ["2"]
    assert number.note == "1/18"
    assert CITIZEN_ID not in "".join(p.text for p in number.account)
    assert diffs["phone"].note == "1/11"
    same = evidence.compare({"name": "张三"}, person)[0]
    assert same.same and "三" not in "".join(p.text for p in same.legacy)


# -- people -------------------------------------------------------------------------------


def test_people_search_page_lock_and_reveal(client, ctx):
    victim = make_person()
    staff = _staff(ctx, client, "security_admin")
    token = _token(client, "/admin/people")
    found = client.post("/admin/people/search", data={"csrf_token": token, "kind": "id_number",
                                                      "q": CITIZEN_ID})
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and f'data-person="{victim.id}"' in html
    assert CITIZEN_ID not in html
    by_name = client.post("/admin/people/search", data={"csrf_token": token, "kind": "name",
                                                        "q": "李四"})
    assert f'data-person="{victim.id}"' in by_name.get_data(as_text=True)
    entry = _events("admin.person_lookup")[-1]
    assert entry["details"]["by"] == "name" and entry["details"]["query"] == "李*"
    assert entry["actor"] == staff.id and "李四" not in str(entry)
    bad = client.post("/admin/people/search", data={"csrf_token": token, "kind": "id_number",
                                                    "q": "123"})
    assert bad.status_code == 400 and 'role="alert"' in bad.get_data(as_text=True)
    page = client.get(f"/admin/people/{victim.id}").get_data(as_text=True)
    assert CITIZEN_ID not in page and "李四" not in page
    no_reason = client.post(f"/admin/people/{victim.id}/lock", data={"csrf_token": token})
    assert no_reason.status_code == 400
    assert db.session.get(Person, victim.id).status == "active"
    client.post(f"/admin/people/{victim.id}/lock", data={"csrf_token": token, "reason": "冒用"})
    assert db.session.get(Person, victim.id).status == "locked"
    shown = client.post(f"/admin/people/{victim.id}/reveal",
                        data={"csrf_token": token, "reason": "核对"})
    assert CITIZEN_ID in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    assert _events("admin.person.revealed")
    assert client.get("/admin/people/nobody").status_code == 404


def test_security_admin_cannot_grant_themselves_from_the_page(client, ctx):
    me = _staff(ctx, client, "security_admin")
    token = _token(client, f"/admin/people/{me.id}")
    assert 'id="roles"' not in client.get(f"/admin/people/{me.id}").get_data(as_text=True)
    resp = client.post(f"/admin/people/{me.id}/roles",
                       data={"csrf_token": token, "role": "audit_admin"})
    assert resp.status_code == 409
    assert db.session.get(AdminRole, (me.id, "audit_admin")) is None


# -- relying parties ---------------------------------------------------------------------


def test_register_edit_rotate_disable_delete_a_client(client, ctx):
    _staff(ctx, client, "system_admin")
    token = _token(client, "/admin/clients/new")
    made = client.post("/admin/clients/new", data={
        "csrf_token": token, "client_id": "shebao", "name": "社保网站",
        "auth_method": "client_secret_basic", "channel": "web",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": "https://shebao.example/cb\n"})
    html = made.get_data(as_text=True)
    assert made.status_code == 201 and 'id="new-secret"' in html
    assert made.headers["Cache-Control"] == "no-store"
    bad = client.post("/admin/clients/shebao/edit", data={
        "csrf_token": token, "name": "社保", "channel": "web",
        "grant_types": ["authorization_code"], "redirect_uris": "http://evil.example/cb"})
    assert bad.status_code == 400 and "未保存" in bad.get_data(as_text=True)
    client.post("/admin/clients/shebao/edit", data={
        "csrf_token": token, "name": "社保网站（新）", "channel": "web", "idcard": "1",
        "grant_types": ["authorization_code"], "redirect_uris": "https://shebao.example/cb",
        "id_token_alg": "SM2SM3"})
    row = db.session.scalar(db.select(Client).where(Client.client_id == "shebao"))
    assert row.name == "社保网站（新）" and row.allowed_sensitive_scopes == ["idcard"]
    rotated = client.post("/admin/clients/shebao/rotate-secret",
                          data={"csrf_token": token, "grace_hours": "2"})
    assert "旧密钥在" in rotated.get_data(as_text=True)
    client.post("/admin/clients/shebao/disable", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.scalar(db.select(Client.status).where(Client.client_id == "shebao")) \
        == "disabled"
    kept = client.post("/admin/clients/shebao/delete", data={"csrf_token": token,
                                                             "confirm": "wrong"})
    assert kept.status_code == 400
    client.post("/admin/clients/shebao/delete", data={"csrf_token": token, "confirm": "shebao"})
    assert db.session.scalar(db.select(Client).where(Client.client_id == "shebao")) is None
    assert {"admin.client.add", "client.updated", "client.secret_rotated",
            "client.status_changed", "client.deleted"} <= {e["event"] for e in audit.export(0)}


def test_pending_registrations_tab_lists_only_pending(client, ctx):
    make_client("rp1")
    make_client("dyn1")
    row = db.session.scalar(db.select(Client).where(Client.client_id == "dyn1"))
    row.status = "pending"
    db.session.commit()
    _staff(ctx, client, "system_admin")
    html = client.get("/admin/clients/pending").get_data(as_text=True)
    assert 'data-client="dyn1"' in html and 'data-client="rp1"' not in html


# -- audit and keys -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_audit_page_filters_exports_and_verifies(client, ctx, fmt):
    audit.record("login.failure", actor="anonymous", client_id="rp9",
                 details={"username": CITIZEN_ID, "reason": "bad_credentials"})
    _staff(ctx, client, "audit_admin")
    page = client.get("/admin/audit?event=login.failure").get_data(as_text=True)
    assert "login.failure" in page and CITIZEN_ID not in page
    exported = client.get(f"/admin/audit/export?format={fmt}&client_id=rp9")
    body = exported.get_data(as_text=True)
    assert exported.status_code == 200 and "rp9" in body and CITIZEN_ID not in body
    assert body.count("login.failure") == 1
    token = form_fields(page)["csrf_token"]
    verified = client.post("/admin/audit/verify", data={"csrf_token": token})
    assert 'id="verify-result"' in verified.get_data(as_text=True)
    assert _events("admin.audit.exported") and _events("admin.audit.verified")
    assert client.get("/admin/people").status_code == 403  # nothing else


def test_keys_page_rotates_and_shows_the_retiring_key(client, ctx):
    _staff(ctx, client, "system_admin")
    before = client.get("/admin/keys").get_data(as_text=True)
    token = form_fields(before)["csrf_token"]
    client.post("/admin/keys/rotate", data={"csrf_token": token, "alg": "ES256"})
    after = client.get("/admin/keys").get_data(as_text=True)
    assert "退役中" in after and "移出 JWKS" in after
    assert client.post("/admin/keys/rotate", data={"csrf_token": token, "alg": "none"},
                       follow_redirects=True).status_code == 200


def test_dashboard_counts_what_was_recorded(client, ctx, tmp_path):
    make_person()
    _import(tmp_path)
    audit.record("login.success", actor="p1", subject="p1",
                 details={"acr": "L2", "sid": "s1", "channel": "kiosk"})
    audit.record("login.failure", actor="anonymous", details={"reason": "locked"})
    _staff(ctx, client, "reviewer")
    html = client.get("/admin/dashboard").get_data(as_text=True)
    assert "vendor/chart.umd.min.js" in html and "//cdn" not in html
    data = client.get("/admin/api/dashboard").get_json()
    assert data["review_backlog"] == 3 and data["lockouts_24h"] == 1
    assert [s["name"] for s in data["sign_ins_by_channel"]] == ["kiosk"]
    assert data["active_sessions_estimate"] == 1
    assert client.get("/admin/static/vendor/chart.umd.min.js").status_code == 200


def test_pages_in_english(client, ctx):
    _staff(ctx, client, "security_admin")
    html = client.get("/admin/people?lang=en").get_data(as_text=True)
    assert "Everyone" in html and "Find by" in html and "全部人员" not in html


def test_pending_registration_is_approved_or_rejected_from_its_page(client, ctx):
    for cid in ("dyn1", "dyn2"):
        make_client(cid)
        db.session.scalar(db.select(Client).where(Client.client_id == cid)).status = "pending"
    db.session.commit()
    _staff(ctx, client, "system_admin")
    page = client.get("/admin/clients/dyn1").get_data(as_text=True)
    assert 'id="approve"' in page and 'id="reject"' in page
    token = form_fields(page)["csrf_token"]
    client.post("/admin/clients/dyn1/approve", data={"csrf_token": token, "reason": "核验通过"})
    client.post("/admin/clients/dyn2/reject", data={"csrf_token": token, "reason": "材料不全"})
    db.session.expire_all()
    assert db.session.scalar(db.select(Client.status).where(Client.client_id == "dyn1")) \
        == "active"
    assert db.session.scalar(db.select(Client).where(Client.client_id == "dyn2")) is None
    assert {"client.approved", "client.rejected"} <= {e["event"] for e in audit.export(0)}
    again = client.post("/admin/clients/dyn1/approve", data={"csrf_token": token})
    assert again.status_code == 400  # no longer pending


def test_api_credentials_page_makes_and_lists_only_your_own(client, ctx):
    from admin import api_credentials

    other = make_person("110101199003070011", "赵六", phone=None)
    theirs, _secret = api_credentials.create("别人的", ["admin:review"], owner=other.id,
                                             held={"reviewer"})
    _staff(ctx, client, "security_admin")
    token = _token(client, "/admin/api-clients")
    made = client.post("/admin/api-clients", data={"csrf_token": token, "name": "巡检脚本",
                                                   "scopes": ["admin:people"]})
    html = made.get_data(as_text=True)
    assert made.status_code == 201 and 'id="new-secret"' in html
    assert "admin:api-clients" in html  # every role may list its own clients by token
    page = client.get("/admin/api-clients").get_data(as_text=True)
    assert "巡检脚本" in page and theirs.client_id not in page
    refused = client.post("/admin/api-clients", data={"csrf_token": token, "name": "x",
                                                      "scopes": ["admin:audit"]})
    assert refused.status_code == 403
    assert _events("admin.api_client.created")[-1]["details"]["scopes"] == ["admin:people"]
