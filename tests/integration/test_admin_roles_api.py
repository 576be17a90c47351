"""Separation of duties (issue 12) through the admin API, in both ways of
authenticating: the console's L3 session (with CSRF) and an admin API client's
client-credentials token. Each role tries every other role's actions and is refused;
the refusal is a 403 before anything changes."""

from __future__ import annotations

import base64

import pytest
from openapi_spec_validator import validate

from admin import roles
from idp import audit
from idp.extensions import db
from idp.models import AdminRole, Person
from tests.helpers import CITIZEN_ID, make_client, make_person
from tests.integration.test_admin_console import sign_in

IDS = {"system_admin": "110105199003071239", "security_admin": "110101199003070011",
       "audit_admin": "110101199003070310", "reviewer": "110101199003070513"}
# One request per duty: (permission it needs, method, path, JSON body).
ACTIONS = {
    "clients": ("system_admin", "get", "/admin/api/clients", None),
    "client_write": ("system_admin", "post", "/admin/api/clients/rp1/disable", {"reason": "t"}),
    "keys": ("system_admin", "get", "/admin/api/keys", None),
    "key_rotate": ("system_admin", "post", "/admin/api/keys/rotate", {"alg": "ES256"}),
    "people": ("security_admin", "get", "/admin/api/people", None),
    "lock": ("security_admin", "post", "/admin/api/people/{victim}/lock", {"reason": "t"}),
    "reveal": ("security_admin", "post", "/admin/api/people/{victim}/reveal", {"reason": "t"}),
    "roles": ("security_admin", "get", "/admin/api/roles", None),
    "audit": ("audit_admin", "get", "/admin/api/audit", None),
    "audit_export": ("audit_admin", "get", "/admin/api/audit/export?format=csv", None),
    "audit_verify": ("audit_admin", "post", "/admin/api/audit/verify", None),
    "review": ("reviewer", "get", "/admin/api/review", None),
}


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


def _headers(client):
    return {"X-CSRFToken": client.get("/admin/api/csrf").get_json()["csrf_token"]}


def _call(client, method, path, body, headers):
    kwargs = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    return getattr(client, method)(path, **kwargs)


@pytest.mark.parametrize("role", list(IDS))
def test_each_role_is_refused_every_other_roles_actions_by_session(app, ctx, staff, role):
    victim = make_person()
    make_client()
    client = app.test_client()
    sign_in(client, ctx, staff[role])
    headers = _headers(client)
    for name, (owner, method, path, body) in ACTIONS.items():
        resp = _call(client, method, path.format(victim=victim.id), body, headers)
        if owner == role:
            assert resp.status_code == 200, (name, resp.get_data(as_text=True))
        else:
            assert resp.status_code == 403, (role, name)
            assert resp.get_json()["error"] == "access_denied"
    # the refusals changed nothing
    assert db.session.get(Person, victim.id).status == ("locked" if role == "security_admin"
                                                        else "active")


def test_security_admin_cannot_export_audit_and_audit_admin_cannot_lock(app, ctx, staff):
    victim = make_person()
    sec, aud = app.test_client(), app.test_client()
    sign_in(sec, ctx, staff["security_admin"])
    sign_in(aud, ctx, staff["audit_admin"])
    assert sec.get("/admin/api/audit/export").status_code == 403
    assert sec.get("/admin/audit/export").status_code == 403
    resp = aud.post(f"/admin/api/people/{victim.id}/lock", json={"reason": "x"},
                    headers=_headers(aud))
    assert resp.status_code == 403
    assert db.session.get(Person, victim.id).status == "active"
    # the audit administrator's own reads are in the log too
    assert aud.get("/admin/api/audit").status_code == 200
    audit.flush()
    reads = [e for e in audit.export(0) if e["event"] == "admin.audit.read"]
    assert reads and reads[-1]["actor"] == staff["audit_admin"].id


def test_no_role_grants_itself_and_the_three_roles_exclude_each_other(app, ctx, staff):
    sec = app.test_client()
    sign_in(sec, ctx, staff["security_admin"])
    h = _headers(sec)
    me = staff["security_admin"].id
    resp = sec.post(f"/admin/api/people/{me}/roles", json={"role": "audit_admin"}, headers=h)
    assert resp.status_code == 409 and "themselves" in resp.get_json()["error_description"]
    other = staff["system_admin"].id
    resp = sec.post(f"/admin/api/people/{other}/roles", json={"role": "audit_admin"}, headers=h)
    assert resp.status_code == 409 and "separation" in resp.get_json()["error_description"]
    resp = sec.post(f"/admin/api/people/{other}/roles", json={"role": "reviewer"}, headers=h)
    assert resp.status_code == 200 and "reviewer" in resp.get_json()["roles"]
    assert sec.post(f"/admin/api/people/{me}/roles/revoke", json={"role": "security_admin"},
                    headers=h).status_code == 409
    with pytest.raises(roles.RoleError):
        roles.grant(IDS["audit_admin"], "system_admin", by="cli")


def _api_client(app, ctx, owner, scopes):
    client = app.test_client()
    sign_in(client, ctx, owner)
    resp = client.post("/admin/api/api-clients", json={"name": "脚本", "scopes": scopes},
                       headers=_headers(client))
    return resp


def _token(app, created, scope):
    cid, secret = created["client"]["client_id"], created["client_secret"]
    basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
    resp = app.test_client().post("/token", data={"grant_type": "client_credentials",
                                                  "scope": scope},
                                  headers={"Authorization": "Basic " + basic})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {"Authorization": "Bearer " + resp.get_json()["access_token"]}


def test_api_client_acts_for_its_owner_within_its_scopes(app, ctx, staff):
    victim = make_person()
    # A security administrator may not make an API client with audit scopes.
    assert _api_client(app, ctx, staff["security_admin"], ["admin:audit"]).status_code == 403
    created = _api_client(app, ctx, staff["security_admin"], ["admin:people"])
    assert created.status_code == 201
    bearer = _token(app, created.get_json(), "admin:people")
    script = app.test_client()  # no cookie, no CSRF: a script
    found = script.post("/admin/api/people/search", json={"kind": "id_number", "q": CITIZEN_ID},
                        headers=bearer)
    assert found.status_code == 200 and found.get_json()["items"][0]["id"] == victim.id
    assert CITIZEN_ID not in found.get_data(as_text=True)
    assert script.post(f"/admin/api/people/{victim.id}/lock", json={"reason": "脚本锁定"},
                       headers=bearer).status_code == 200
    assert db.session.get(Person, victim.id).status == "locked"
    for method, path in (("get", "/admin/api/audit"), ("get", "/admin/api/clients"),
                         ("get", "/admin/api/review")):
        assert getattr(script, method)(path, headers=bearer).status_code == 403
    # A token may not make more API clients, nor act after its owner lost the role.
    assert script.post("/admin/api/api-clients", json={"name": "x", "scopes": ["admin:people"]},
                       headers=bearer).status_code == 403
    roles.revoke_from(staff["security_admin"], "security_admin", by="test")
    assert script.get("/admin/api/people", headers=bearer).status_code == 403
    # An ordinary client's token is no admin credential; a forged token is a 401.
    rp = make_client("svc", grant_types=["client_credentials"], redirect_uris=())
    basic = base64.b64encode(f"svc:{rp.secret}".encode()).decode()
    token = app.test_client().post("/token", data={"grant_type": "client_credentials"},
                                   headers={"Authorization": "Basic " + basic}).get_json()
    assert script.get("/admin/api/people", headers={
        "Authorization": "Bearer " + token["access_token"]}).status_code == 403
    assert script.get("/admin/api/people", headers={
        "Authorization": "Bearer x.y.z"}).status_code == 401
    events = {e["event"] for e in audit.export(0)} if audit.flush() is not None else set()
    assert {"admin.api_client.created", "admin.person.locked"} <= events


def test_openapi_document_is_valid_and_declares_schemas(client, ctx):
    doc = client.get("/admin/api/openapi.json").get_json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    op = doc["paths"]["/admin/api/people/{person_id}/lock"]["post"]
    assert {"200", "400", "401", "403", "404", "409"} <= set(op["responses"])
    body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert doc["components"]["schemas"][body]["required"] == ["reason"]
    for path, item in doc["paths"].items():
        for _method, operation in item.items():
            ok = operation["responses"].get("200") or operation["responses"].get("201")
            if ok and "application/json" in ok["content"]:
                assert ok["content"]["application/json"]["schema"] != {"type": "object"}, path
    assert "adminClient" in doc["components"]["securitySchemes"]


def test_requests_outside_their_schema_are_400s(app, ctx, staff):
    victim = make_person()
    sec = app.test_client()
    sign_in(sec, ctx, staff["security_admin"])
    h = _headers(sec)
    lock = f"/admin/api/people/{victim.id}/lock"
    for body in ({}, {"reason": ""}, {"reason": "x", "extra": 1}, {"reason": 5}, ["x"]):
        resp = sec.post(lock, json=body, headers=h)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request", body
    assert sec.get("/admin/api/people?page=%D9%A3").status_code == 400
    assert sec.post(lock, json={"reason": "x"}).status_code == 400  # no CSRF token
    assert db.session.get(Person, victim.id).status == "active"
