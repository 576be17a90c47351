"""The admin API's operations that the console and the CLI had first (issue 12): bulk
decisions on a filtered review set (the console's own service: confirmed by the count
the caller saw, capped, audited, undone by batch), approving and rejecting pending
registrations, listing the admin API's own clients — in both ways of authenticating,
with the other roles refused — and name searches audited without the name."""

from __future__ import annotations

import pytest

from admin import review_queue
from idp import audit
from idp.extensions import db
from idp.models import AdminRole, Client, ReviewItem
from tests.helpers import make_client, make_person
from tests.integration.test_admin_console import _import, sign_in
from tests.integration.test_admin_roles_api import IDS, _api_client, _headers, _token

TAX = [f"t{i},王{i},,1360000{i:04d}" for i in range(30)]


@pytest.fixture
def staff(ctx):
    out = {}
    for i, (role, number) in enumerate(IDS.items()):
        person = make_person(number, f"管理员{i}", "Admin-Pass-2026", phone=f"1380013800{i}")
        person.assurance_level = "L3"
        db.session.add(AdminRole(person_id=person.id, role=role, granted_by="test"))
        out[role] = person
    db.session.commit()
    return out


def _session(app, ctx, person):
    client = app.test_client()
    sign_in(client, ctx, person)
    return client, _headers(client)


def _events(name):
    audit.flush()
    return [e for e in audit.export(0) if e["event"] == name]


def _states():
    db.session.expire_all()
    return dict(db.session.execute(db.select(ReviewItem.state, db.func.count())
                                   .group_by(ReviewItem.state)).all())


def _queue(tmp_path):
    make_person()
    _import(tmp_path, TAX, source="tax-2010")
    _import(tmp_path)  # three more, from another source


# -- bulk decisions -----------------------------------------------------------------------


def test_bulk_reject_by_session_is_confirmed_by_the_count_audited_and_undone(
        app, ctx, staff, tmp_path):
    _queue(tmp_path)
    rev, h = _session(app, ctx, staff["reviewer"])
    seen = rev.get("/admin/api/review?source=tax-2010&per_page=5").get_json()
    assert seen["total"] == 30 and len(seen["items"]) == 5
    body = {"action": "reject", "source": "tax-2010", "expected": 30, "note": "测试数据"}
    # without the CSRF token of the session: refused, nothing decided
    assert rev.post("/admin/api/review/bulk", json=body).status_code == 400
    # a count that is not what the filter matches now: 409, nothing decided
    stale = rev.post("/admin/api/review/bulk", json={**body, "expected": 29}, headers=h)
    assert stale.status_code == 409 and stale.get_json()["error"] == "conflict"
    assert "30" in stale.get_json()["error_description"]
    assert _states() == {"pending": 33}
    done = rev.post("/admin/api/review/bulk", json=body, headers=h)
    assert done.status_code == 200, done.get_data(as_text=True)
    out = done.get_json()
    assert (out["done"], out["refused"], out["remaining"]) == (30, 0, 0)
    assert out["limit"] == review_queue.BULK_LIMIT and out["action"] == "reject"
    assert _states() == {"rejected": 30, "pending": 3}  # the other source untouched
    entry = _events("admin.review.bulk")[-1]
    assert entry["actor"] == staff["reviewer"].id and entry["details"]["batch"] == out["batch"]
    assert entry["details"]["filter"]["source"] == "tax-2010"
    assert entry["details"]["done"] == 30 and entry["details"]["note"] == "测试数据"
    undone = rev.post(f"/admin/api/review/bulk/{out['batch']}/undo", json={"note": "误操作"},
                      headers=h)
    assert undone.status_code == 200 and undone.get_json() == {"batch": out["batch"],
                                                               "undone": 30}
    assert _states() == {"pending": 33}
    assert _events("admin.review.bulk_undone")[-1]["details"] == {"batch": out["batch"],
                                                                  "undone": 30}
    # the batch is known but nothing is left as it left it; an unknown batch is a 404
    again = rev.post(f"/admin/api/review/bulk/{out['batch']}/undo", json={}, headers=h)
    assert again.status_code == 200 and again.get_json()["undone"] == 0
    assert rev.post("/admin/api/review/bulk/0123456789abcdef/undo", json={},
                    headers=h).status_code == 404


def test_bulk_is_capped_per_request_and_says_how_many_remain(
        app, ctx, staff, tmp_path, monkeypatch):
    _queue(tmp_path)
    monkeypatch.setattr(review_queue, "BULK_LIMIT", 12)
    rev, h = _session(app, ctx, staff["reviewer"])
    body = {"action": "reject", "source": "tax-2010"}
    first = rev.post("/admin/api/review/bulk", json={**body, "expected": 30}, headers=h)
    assert first.get_json()["done"] == 12 and first.get_json()["remaining"] == 18
    assert first.get_json()["limit"] == 12
    # the count the caller confirms next is what the filter matches now
    assert rev.get("/admin/api/review?source=tax-2010").get_json()["total"] == 18
    second = rev.post("/admin/api/review/bulk", json={**body, "expected": 18}, headers=h)
    assert (second.get_json()["done"], second.get_json()["remaining"]) == (12, 6)
    assert second.get_json()["batch"] != first.get_json()["batch"]
    # undoing the first batch leaves the second's decisions alone
    rev.post(f"/admin/api/review/bulk/{first.get_json()['batch']}/undo", json={}, headers=h)
    assert _states() == {"rejected": 12, "pending": 21}


def test_bulk_filters_as_the_listing_does_and_approvals_refused_stay_pending(
        app, ctx, staff, tmp_path):
    _queue(tmp_path)
    rev, h = _session(app, ctx, staff["reviewer"])
    assert rev.get("/admin/api/review?source=tax-2010&q=t1").get_json()["total"] == 11
    assert rev.get("/admin/api/review?since=32503680000").get_json()["total"] == 0
    assert rev.get("/admin/api/review?since=0&until=32503680000").get_json()["total"] == 33
    resp = rev.post("/admin/api/review/bulk", json={"action": "reject", "source": "tax-2010",
                                                    "q": "t1", "expected": 11}, headers=h)
    assert resp.get_json()["done"] == 11
    assert _states() == {"rejected": 11, "pending": 22}
    others = rev.get("/admin/api/review?source=shebao-2012").get_json()
    approved = rev.post("/admin/api/review/bulk", json={
        "action": "approve", "source": "shebao-2012", "expected": others["total"]}, headers=h)
    out = approved.get_json()
    assert approved.status_code == 200 and out["done"] + out["refused"] == 3
    listed = rev.get("/admin/api/review?source=shebao-2012&state=all").get_json()["items"]
    assert sum(i["state"] == "pending" for i in listed) == out["refused"]
    for bad in ({"action": "merge", "expected": 1}, {"action": "reject", "expected": -1},
                {"action": "reject", "expected": 1, "state": "approved"},
                {"action": "reject"}, {"action": "reject", "expected": 1, "x": 1}):
        refused = rev.post("/admin/api/review/bulk", json=bad, headers=h)
        assert refused.status_code == 400, bad


def test_bulk_by_bearer_token_and_refused_to_the_other_roles(app, ctx, staff, tmp_path):
    _queue(tmp_path)
    for role in ("system_admin", "security_admin", "audit_admin"):
        other, h = _session(app, ctx, staff[role])
        for path in ("/admin/api/review/bulk", "/admin/api/review/bulk/0123456789abcdef/undo"):
            resp = other.post(path, json={"action": "reject", "expected": 33}, headers=h)
            assert resp.status_code == 403 and resp.get_json()["error"] == "access_denied"
    assert _states() == {"pending": 33}
    made = _api_client(app, ctx, staff["reviewer"], ["admin:review", "admin:dashboard"])
    script = app.test_client()  # no cookie, no CSRF
    review_token = _token(app, made.get_json(), "admin:review")
    resp = script.post("/admin/api/review/bulk", json={"action": "reject", "expected": 33},
                       headers=review_token)
    assert resp.status_code == 200 and resp.get_json()["done"] == 33
    cid = made.get_json()["client"]["client_id"]
    assert _events("admin.review.bulk")[-1]["actor"] == f"client:{cid}"
    # the same client's token without admin:review may not
    dashboard_token = _token(app, made.get_json(), "admin:dashboard")
    batch = resp.get_json()["batch"]
    assert script.post(f"/admin/api/review/bulk/{batch}/undo", json={},
                       headers=dashboard_token).status_code == 403
    assert _states() == {"rejected": 33}
    undone = script.post(f"/admin/api/review/bulk/{batch}/undo", json={}, headers=review_token)
    assert undone.get_json()["undone"] == 33 and _states() == {"pending": 33}


# -- pending registrations ------------------------------------------------------------------


def _pending(*ids):
    for cid in ids:
        make_client(cid)
        row = db.session.scalar(db.select(Client).where(Client.client_id == cid))
        row.status = "pending"
        row.client_metadata = {**row.client_metadata, "registration": {
            "requested_sensitive_scopes": ["idcard"]}}
    db.session.commit()


def _client_row(cid):
    db.session.expire_all()
    return db.session.scalar(db.select(Client).where(Client.client_id == cid))


def test_pending_registration_rejected_or_approved_through_the_api(app, ctx, staff):
    _pending("dyn1", "dyn2")
    make_client("rp1")
    sys_admin, h = _session(app, ctx, staff["system_admin"])
    listed = sys_admin.get("/admin/api/clients?status=pending").get_json()
    assert sorted(c["client_id"] for c in listed["items"]) == ["dyn1", "dyn2"]
    rejected = sys_admin.post("/admin/api/clients/dyn2/reject", json={"reason": "材料不全"},
                              headers=h)
    assert rejected.status_code == 200
    assert rejected.get_json() == {"client_id": "dyn2", "status": "rejected"}
    assert _client_row("dyn2") is None
    entry = _events("client.rejected")[-1]
    assert entry["actor"] == staff["system_admin"].id and entry["client_id"] == "dyn2"
    assert entry["details"]["reason"] == "材料不全"
    approved = sys_admin.post("/admin/api/clients/dyn1/approve",
                              json={"grant_sensitive": True, "reason": "核验通过"}, headers=h)
    assert approved.status_code == 200, approved.get_data(as_text=True)
    assert approved.get_json()["status"] == "active"
    assert approved.get_json()["sensitive_scopes"] == ["idcard"]
    assert _events("client.approved")[-1]["details"]["granted_sensitive_scopes"] == ["idcard"]
    # neither is pending any more: 409 / 404; an active client is not rejected
    assert sys_admin.post("/admin/api/clients/dyn1/approve", json={},
                          headers=h).status_code == 409
    assert sys_admin.post("/admin/api/clients/rp1/reject", json={},
                          headers=h).status_code == 409
    assert _client_row("rp1").status == "active"
    assert sys_admin.post("/admin/api/clients/dyn2/reject", json={},
                          headers=h).status_code == 404
    assert sys_admin.post("/admin/api/clients/dyn1/reject", json={"reason": 5},
                          headers=h).status_code == 400


def test_registration_decisions_refused_to_other_roles_and_allowed_by_bearer(app, ctx, staff):
    _pending("dyn1", "dyn2")
    for role in ("security_admin", "audit_admin", "reviewer"):
        other, h = _session(app, ctx, staff[role])
        for action in ("approve", "reject"):
            resp = other.post(f"/admin/api/clients/dyn1/{action}", json={}, headers=h)
            assert resp.status_code == 403, (role, action)
    assert _client_row("dyn1").status == "pending"
    made = _api_client(app, ctx, staff["system_admin"], ["admin:clients"])
    bearer = _token(app, made.get_json(), "admin:clients")
    script = app.test_client()
    assert script.post("/admin/api/clients/dyn1/reject", json={"reason": "重复申请"},
                       headers=bearer).status_code == 200
    assert script.post("/admin/api/clients/dyn2/approve", json={},
                       headers=bearer).status_code == 200
    assert _client_row("dyn1") is None
    row = _client_row("dyn2")
    assert row.status == "active" and not row.allowed_sensitive_scopes  # not granted
    cid = made.get_json()["client"]["client_id"]
    assert _events("client.rejected")[-1]["actor"] == f"client:{cid}"


# -- the admin API's own clients ------------------------------------------------------------


def test_api_clients_listed_for_their_owner_and_all_for_the_system_admin(app, ctx, staff):
    make_client("rp1")
    mine = [_api_client(app, ctx, staff["security_admin"], scopes).get_json()
            for scopes in (["admin:people"], ["admin:people", "admin:api-clients"])]
    theirs = _api_client(app, ctx, staff["reviewer"], ["admin:review"]).get_json()
    sec, _h = _session(app, ctx, staff["security_admin"])
    listed = sec.get("/admin/api/api-clients").get_json()
    assert listed["total"] == 2
    assert {c["client_id"] for c in listed["items"]} == {m["client"]["client_id"] for m in mine}
    first = next(c for c in listed["items"] if c["client_id"] == mine[0]["client"]["client_id"])
    assert first["owner"] == staff["security_admin"].id and first["scopes"] == ["admin:people"]
    assert "client_secret" not in str(listed) and mine[0]["client_secret"] not in str(listed)
    # by bearer: a token with admin:api-clients lists its owner's; without it, refused
    script = app.test_client()
    bearer = _token(app, mine[1], "admin:api-clients")
    by_token = script.get("/admin/api/api-clients", headers=bearer).get_json()
    assert by_token["total"] == 2
    assert script.get("/admin/api/api-clients", headers=_token(
        app, mine[1], "admin:people")).status_code == 403
    assert script.get("/admin/api/csrf", headers=bearer).status_code == 403
    assert script.post("/admin/api/api-clients", json={"name": "x", "scopes": ["admin:people"]},
                       headers=bearer).status_code == 403
    # the reviewer sees only theirs; the system administrator everyone's, through /clients
    rev, _h = _session(app, ctx, staff["reviewer"])
    assert [c["client_id"] for c in rev.get("/admin/api/api-clients").get_json()["items"]] \
        == [theirs["client"]["client_id"]]
    sys_admin, _h = _session(app, ctx, staff["system_admin"])
    every = sys_admin.get("/admin/api/clients?kind=admin_api").get_json()
    assert every["total"] == 3 and all(c["admin_owner"] for c in every["items"])
    owned = sys_admin.get(f"/admin/api/clients?kind=admin_api&owner={staff['reviewer'].id}")
    assert [c["client_id"] for c in owned.get_json()["items"]] == [theirs["client"]["client_id"]]
    parties = sys_admin.get("/admin/api/clients?kind=relying_party").get_json()
    assert [c["client_id"] for c in parties["items"]] == ["rp1"]
    assert sec.get("/admin/api/clients?kind=admin_api").status_code == 403
    assert sys_admin.get("/admin/api/clients?kind=other").status_code == 400


# -- name searches are audited, without the name -------------------------------------------


def test_name_search_through_the_api_is_audited_masked(app, ctx, staff):
    target = make_person(name="欧阳娜娜")
    sec, h = _session(app, ctx, staff["security_admin"])
    found = sec.post("/admin/api/people/search", json={"kind": "name", "q": "欧阳娜"},
                     headers=h)
    assert [p["id"] for p in found.get_json()["items"]] == [target.id]
    entry = _events("admin.person_lookup")[-1]
    assert entry["actor"] == staff["security_admin"].id and entry["subject"] == target.id
    assert entry["details"]["by"] == "name" and entry["details"]["found"] == 1
    assert entry["details"]["query"] == "欧**" and len(entry["details"]["query_hmac"]) == 32
    assert "欧阳娜" not in str(entry) and "阳" not in str(entry)
    aud, _h = _session(app, ctx, staff["audit_admin"])
    shown = aud.get("/admin/api/audit?event=admin.person_lookup").get_data(as_text=True)
    assert "欧**" in shown and "欧阳娜" not in shown


def test_the_new_operations_are_in_the_openapi_document(client, ctx):
    from openapi_spec_validator import validate

    doc = client.get("/admin/api/openapi.json").get_json()
    validate(doc)
    bulk = doc["paths"]["/admin/api/review/bulk"]["post"]
    assert {"200", "400", "401", "403", "409", "413"} <= set(bulk["responses"])
    body = bulk["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert set(doc["components"]["schemas"][body]["required"]) == {"action", "expected"}
    assert {"adminClient": ["admin:review"]} in bulk["security"]
    undo = doc["paths"]["/admin/api/review/bulk/{batch}/undo"]["post"]
    assert "404" in undo["responses"]
    for action in ("approve", "reject"):
        op = doc["paths"][f"/admin/api/clients/{{client_id}}/{action}"]["post"]
        assert "409" in op["responses"] and {"adminClient": ["admin:clients"]} in op["security"]
    listing = doc["paths"]["/admin/api/api-clients"]["get"]
    ok = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/ApiClientsList")
    assert {"adminClient": ["admin:api-clients"]} in listing["security"]
    assert "admin:api-clients" in doc["components"]["securitySchemes"]["adminClient"][
        "flows"]["clientCredentials"]["scopes"]
