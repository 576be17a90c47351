"""The admin console and its API (issue 4): who gets in (session, role, acr L3), CSRF,
masking, and approve / reject / merge / undo through pages and JSON, each audited."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from urllib.parse import urlsplit

import pytest

from connectors.csv_source import CsvSource
from connectors.importer import run_import
from idp import audit
from idp.extensions import db
from idp.models import AdminRole, LegacyAccount, Person, ReviewItem
from idp.store import store
from tests.helpers import CITIZEN_ID, CITIZEN_PASSWORD, form_fields, make_person, query

ADMIN_ID = "110105199003071239"
ADMIN_PASSWORD = "Admin-Pass-2026"
FIELDS = {"legacy_id": "用户编号", "name": "姓名", "id_number": "身份证号", "phone": "手机"}
ROWS = [
    f"a3,李斯,{CITIZEN_ID},13912345678",         # same number, another name → review
    "a2,赵六,110101900307001,13700001111",     # 15-digit number, nobody yet → review
    "a5,李 四,,139 1234 5678",                  # no number, phone + name → review
]
RAW = ["李斯", CITIZEN_ID, "13912345678", "赵六", "110101199003070011", "110101900307001",
       "13700001111", "139 1234 5678"]


def _import(tmp_path, rows=ROWS, source="shebao-2012"):
    path = tmp_path / f"{source}.csv"
    path.write_bytes(("用户编号,姓名,身份证号,手机\n" + "\n".join(rows) + "\n").encode("gbk"))
    run_import(CsvSource(source, FIELDS, path=path))
    return {i.reason: i.id for i in db.session.scalars(db.select(ReviewItem))}


def _admin(role="reviewer", level="L3") -> Person:
    person = make_person(ADMIN_ID, "管理员甲", ADMIN_PASSWORD, phone="13800138000")
    person.assurance_level = level
    if role:
        db.session.add(AdminRole(person_id=person.id, role=role, granted_by="test"))
    db.session.commit()
    return person


def sign_in(client, app, person: Person, amr=("pwd", "otp")) -> None:
    """A session as sso.start makes it, at the level the amr prove (here: L3)."""
    from idp.authn import assurance

    token = secrets.token_urlsafe(32)
    now = time.time()
    record = {"sid": secrets.token_urlsafe(16), "person_id": person.id,
              "auth_time": int(now), "created": now, "amr": list(amr),
              "acr": assurance.session_level(person.assurance_level, amr),
              "channel": "web", "idle_timeout": None}
    store().set("sso:" + hashlib.sha256(token.encode()).hexdigest(), record, 3600)
    client.set_cookie(app.config["SSO_COOKIE_NAME"], token)


def _csrf(client, path) -> str:
    html = client.get(path).get_data(as_text=True)
    return form_fields(html)["csrf_token"]


def _audit_entries(event):
    audit.flush()
    return [e for e in audit.export(0) if e["event"] == event]


# -- who gets in -----------------------------------------------------------------------


def test_without_session_the_console_starts_a_sign_in_at_l3(client, ctx):
    resp = client.get("/admin/review?state=all")
    assert resp.status_code == 302
    params = query(resp.headers["Location"])
    assert urlsplit(resp.headers["Location"]).path == "/authorize"
    assert params["client_id"] == "admin-console" and params["acr_values"] == "L3"
    assert params["code_challenge_method"] == "S256"
    login = client.get(resp.headers["Location"])
    assert urlsplit(login.headers["Location"]).path == "/login"
    assert client.get("/admin/api/review").status_code == 401
    assert client.get("/admin/api/review").get_json()["error"] == "login_required"


def test_password_only_session_is_sent_to_step_up_then_callback_returns(client, ctx):
    admin = _admin()
    first = client.get("/admin/review?state=all")
    login_url = client.get(first.headers["Location"]).headers["Location"]
    fields = form_fields(client.get(login_url).get_data(as_text=True))
    resp = client.post("/login", data={**fields, "username": ADMIN_ID,
                                       "password": ADMIN_PASSWORD})
    resp = client.get(resp.headers["Location"])  # back to /authorize, now with an L2 session
    assert urlsplit(resp.headers["Location"]).path == "/login/step-up"
    # The console itself says why, with a way to start the step-up.
    page = client.get("/admin/review")
    assert page.status_code == 403 and "需要更高认证等级" in page.get_data(as_text=True)
    assert client.get("/admin/api/review").get_json()["error"] == \
        "insufficient_user_authentication"
    # Once the session is at L3 (as the step-up page would leave it), the same request
    # comes back through the callback to the page first asked for.
    sign_in(client, ctx, admin)
    resp = client.get("/admin/signin?next=/admin/review%3Fstate%3Dall")
    resp = client.get(resp.headers["Location"])
    assert resp.status_code == 302
    back = resp.headers["Location"]
    assert urlsplit(back).path == "/admin/callback"
    resp = client.get(back)
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/review?state=all"
    # A callback not started here (no or other state) leads nowhere.
    assert client.get(back).status_code == 400


def test_callback_refuses_foreign_targets_and_reports_unmet_level(client, ctx):
    _admin()
    resp = client.get("/admin/signin?next=https://evil.example/")
    state = query(resp.headers["Location"])["state"]
    resp = client.get(f"/admin/callback?state={state}&error=unmet_authentication_requirements")
    assert resp.status_code == 400 and "L3" in resp.get_data(as_text=True)
    resp = client.get("/admin/signin?next=//evil.example/admin/")
    state = query(resp.headers["Location"])["state"]
    resp = client.get(f"/admin/callback?state={state}&code=x")
    assert resp.headers["Location"] == "/admin/review"


def test_session_without_role_is_forbidden(client, ctx):
    person = _admin(role=None)
    sign_in(client, ctx, person)
    assert client.get("/admin/review").status_code == 403
    assert "无权访问" in client.get("/admin/review").get_data(as_text=True)
    assert client.get("/admin/api/review").status_code == 403
    assert client.get("/admin/api/review").get_json()["error"] == "access_denied"


def test_reviewer_may_not_undo_person_merges(client, ctx):
    sign_in(client, ctx, _admin("reviewer"))
    token = client.get("/admin/api/csrf").get_json()["csrf_token"]
    resp = client.post("/admin/merges/1/undo", data={"csrf_token": token})
    assert resp.status_code == 403


# -- pages -----------------------------------------------------------------------------


def test_pages_show_only_masked_personal_data(client, ctx, tmp_path):
    make_person()
    items = _import(tmp_path)
    sign_in(client, ctx, _admin())
    pages = [client.get("/admin/review?state=all").get_data(as_text=True)]
    for item_id in items.values():
        pages.append(client.get(f"/admin/review/{item_id}").get_data(as_text=True))
    token = form_fields(pages[-1])["csrf_token"]
    found = client.post(f"/admin/review/{items['no_match_untrusted_source']}/search",
                        data={"csrf_token": token, "id_number": CITIZEN_ID.lower()})
    assert found.status_code == 200
    pages.append(found.get_data(as_text=True))
    for html in pages:
        for raw in RAW + [ADMIN_ID, "管理员甲"]:
            assert raw not in html, raw
    differs = client.get(f"/admin/review/{items['id_number_name_differs']}").get_data(
        as_text=True)
    # Side by side: the legacy row and the candidate, both masked.
    assert "李*" in differs and "110105********002X" in differs and "139****5678" in differs
    assert 'class="item person"' in differs and "shebao-2012:a3" in differs


def test_queue_filters_and_pages(client, ctx, tmp_path):
    make_person()
    _import(tmp_path)
    _import(tmp_path, [f"t{i},王{i},,1360000{i:04d}" for i in range(25)], source="tax-2010")
    sign_in(client, ctx, _admin())
    html = client.get("/admin/review?source=tax-2010").get_data(as_text=True)
    assert html.count('data-item="') == 20 and "shebao-2012" not in html.split('id="queue"')[1]
    second = client.get("/admin/review?source=tax-2010&page=2").get_data(as_text=True)
    assert second.count('data-item="') == 5
    by_reason = client.get("/admin/review?reason=id_number_name_differs").get_data(as_text=True)
    assert by_reason.count('data-item="') == 1
    assert client.get("/admin/review?state=approved").get_data(as_text=True).count(
        'data-item="') == 0
    api = client.get("/admin/api/review?source=tax-2010&page=2").get_json()
    assert api["total"] == 25 and len(api["items"]) == 5
    assert client.get("/admin/api/review?state=bogus").status_code == 400


def test_csrf_is_required_on_every_post(client, ctx, tmp_path):
    make_person()
    items = _import(tmp_path)
    sign_in(client, ctx, _admin())
    item_id = items["id_number_name_differs"]
    assert client.post(f"/admin/review/{item_id}/approve", data={}).status_code == 400
    assert client.post(f"/admin/review/{item_id}/approve",
                       data={"csrf_token": "forged"}).status_code == 400
    resp = client.post(f"/admin/api/review/{item_id}/approve", json={})
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_csrf_token"
    assert db.session.get(ReviewItem, item_id).state == "pending"


def test_approve_reject_undo_in_the_console_are_audited(client, ctx, tmp_path):
    person = make_person()
    items = _import(tmp_path)
    admin = _admin()
    sign_in(client, ctx, admin)
    differs = items["id_number_name_differs"]
    token = _csrf(client, f"/admin/review/{differs}")
    resp = client.post(f"/admin/review/{differs}/approve",
                       data={"csrf_token": token, "note": "同一人，改过名"})
    assert resp.status_code == 302
    account = db.session.scalar(db.select(LegacyAccount).where(LegacyAccount.legacy_id == "a3"))
    assert (account.state, account.person_id) == ("merged", person.id)
    assert "已批准" in client.get(resp.headers["Location"]).get_data(as_text=True)
    # Deciding twice is refused with a readable page, not a stack trace.
    again = client.post(f"/admin/review/{differs}/approve", data={"csrf_token": token})
    assert again.status_code == 409 and "已处理" in again.get_data(as_text=True)
    weak = items["weak_phone_and_name"]
    client.post(f"/admin/review/{weak}/reject", data={"csrf_token": token})
    assert db.session.get(ReviewItem, weak).state == "rejected"
    client.post(f"/admin/review/{differs}/undo", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(ReviewItem, differs).state == "pending"
    assert db.session.get(LegacyAccount, account.id).person_id is None
    entries = {e["event"]: e for e in _audit_entries("legacy.approve")
               + _audit_entries("legacy.reject") + _audit_entries("legacy.undo")}
    approve = entries["legacy.approve"]
    assert approve["actor"] == admin.id and approve["subject"] == person.id
    assert approve["details"]["item"] == differs
    assert approve["details"]["rule"] == "id_number_name_differs"
    assert approve["details"]["source"] == "shebao-2012"
    assert approve["details"]["legacy_id"] == "a3"
    assert approve["details"]["note"] == "同一人，改过名"
    assert entries["legacy.reject"]["actor"] == admin.id
    assert entries["legacy.undo"]["details"]["undid"] == "approved"
    assert CITIZEN_ID not in json.dumps([*entries.values()], ensure_ascii=False)


def test_merge_into_a_searched_person_then_undo(client, ctx, tmp_path):
    items = _import(tmp_path)
    target = make_person("110101199003070011", "赵六", CITIZEN_PASSWORD, phone=None)
    sign_in(client, ctx, _admin())
    item_id = items["no_match_untrusted_source"]
    token = _csrf(client, f"/admin/review/{item_id}")
    page = client.post(f"/admin/review/{item_id}/search",
                       data={"csrf_token": token, "id_number": "110101900307001"})
    html = page.get_data(as_text=True)
    assert f'value="{target.id}"' in html and "110101********0011" in html
    assert client.post(f"/admin/review/{item_id}/merge",
                       data={"csrf_token": token}).status_code == 400
    resp = client.post(f"/admin/review/{item_id}/merge",
                       data={"csrf_token": token, "person_id": target.id})
    assert resp.status_code == 302
    item = db.session.get(ReviewItem, item_id)
    account = db.session.get(LegacyAccount, item.legacy_account_id)
    assert (item.state, account.person_id) == ("merged", target.id)
    client.post(f"/admin/review/{item_id}/undo", data={"csrf_token": token})
    db.session.expire_all()
    assert (db.session.get(ReviewItem, item_id).state,
            db.session.get(LegacyAccount, account.id).person_id) == ("pending", None)
    assert _audit_entries("legacy.merge")[0]["details"]["merge_record"] is None
    not_found = client.post(f"/admin/review/{item_id}/search",
                            data={"csrf_token": token, "id_number": "310101197510080060"})
    assert not_found.status_code == 404
    lookups = _audit_entries("admin.person_lookup")
    assert [(e["subject"], e["details"]["found"]) for e in lookups] == [
        (target.id, True), (None, False)]


# -- the API ---------------------------------------------------------------------------


def _api_token(client) -> dict:
    return {"X-CSRFToken": client.get("/admin/api/csrf").get_json()["csrf_token"]}


def test_api_lists_and_decides(client, ctx, tmp_path):
    person = make_person()
    items = _import(tmp_path)
    admin = _admin()
    sign_in(client, ctx, admin)
    listing = client.get("/admin/api/review?state=pending").get_json()
    assert listing["total"] == 3
    assert not any(raw in json.dumps(listing, ensure_ascii=False) for raw in RAW)
    h = _api_token(client)
    differs = items["id_number_name_differs"]
    detail = client.get(f"/admin/api/review/{differs}").get_json()
    assert detail["candidates"][0]["id"] == person.id
    assert detail["candidates"][0]["id_number"] == "110105********002X"
    resp = client.post(f"/admin/api/review/{differs}/approve", json={"note": "ok"}, headers=h)
    assert resp.status_code == 200 and resp.get_json()["state"] == "approved"
    resp = client.post(f"/admin/api/review/{differs}/approve", json={}, headers=h)
    assert resp.status_code == 409 and resp.get_json()["error"] == "conflict"
    assert client.post(f"/admin/api/review/{differs}/undo", headers=h).get_json()["state"] \
        == "pending"
    resp = client.post(f"/admin/api/review/{differs}/merge", json={"person_id": person.id},
                       headers=h)
    assert resp.get_json()["state"] == "merged"
    assert client.post(f"/admin/api/review/{items['weak_phone_and_name']}/reject",
                       json={"note": "不是同一人"}, headers=h).get_json()["state"] == "rejected"
    assert client.post("/admin/api/review/99999/reject", headers=h).status_code == 404
    assert client.post(f"/admin/api/review/{differs}/merge", json={}, headers=h)\
        .status_code == 400
    assert client.post(f"/admin/api/review/{differs}/merge", json=["x"], headers=h)\
        .status_code == 400
    assert {e["actor"] for e in _audit_entries("legacy.merge")} == {admin.id}


def test_openapi_document_lists_the_paths(client, ctx):
    doc = json.loads(client.get("/admin/api/openapi.json").get_data(as_text=True))
    assert doc["openapi"].startswith("3.")
    assert {"/admin/api/review", "/admin/api/review/{item_id}/approve",
            "/admin/api/review/{item_id}/reject", "/admin/api/review/{item_id}/undo",
            "/admin/api/review/{item_id}/merge"} <= set(doc["paths"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert method in ("get", "post") and op["responses"], path
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    assert "{" + param["name"] + "}" in path


@pytest.mark.parametrize("path", ["/admin/review", "/admin/merges", "/admin/review/1"])
def test_pages_fit_a_phone_and_carry_csrf_on_forms(client, ctx, tmp_path, path):
    make_person()
    _import(tmp_path)
    sign_in(client, ctx, _admin("admin"))
    first = db.session.scalar(db.select(ReviewItem.id).order_by(ReviewItem.id))
    html = client.get(path.replace("/1", f"/{first}")).get_data(as_text=True)
    assert 'name="viewport"' in html
    for form in re.findall(r'<form method="post".*?</form>', html, re.S):
        assert 'name="csrf_token"' in form
