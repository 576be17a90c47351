"""The FAPI 2.0 security profile of an existing client (issue 14): set and cleared in the
console's form, through the admin API and with ``idp client update --profile``, refused
with a readable reason when the registration cannot meet it (the check ``idp client add
--profile fapi2`` makes), audited, and enforced at once on the protocol endpoints."""

from __future__ import annotations

import contextlib
import json

import pytest
from click.testing import CliRunner
from flask_babel import refresh

from idp import audit
from idp.extensions import db
from idp.models import AdminRole, Client
from idp.policy import DEVICE_CODE
from tests.helpers import REDIRECT, form_fields, make_client, make_person
from tests.integration.test_admin_console import sign_in
from tests.integration.test_admin_roles_api import _headers

from .fapi_helpers import auth_params, code_via_par, keyed_client

STAFF_ID = "110105199003071239"


@pytest.fixture
def admin(ctx, client):
    person = make_person(STAFF_ID, "管理员甲", "Admin-Pass-2026", phone="13800138000")
    person.assurance_level = "L3"
    db.session.add(AdminRole(person_id=person.id, role="system_admin", granted_by="test"))
    db.session.commit()
    sign_in(client, ctx, person)
    return client


def _profile(client_id):
    db.session.expire_all()
    row = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
    return row.meta("profile")


def _updates(client_id):
    audit.flush()
    return [e for e in audit.export(0)
            if e["event"] == "client.updated" and e.get("client_id") == client_id]


def _edit_form(page_html: str, **over) -> dict:
    """The edit form as the page renders it for this client, with ``over`` changed."""
    fields = {"csrf_token": form_fields(page_html)["csrf_token"], "name": "测试",
              "channel": "web", "grant_types": ["authorization_code", "refresh_token"],
              "redirect_uris": REDIRECT}
    fields.update(over)
    return fields


def _page_error(resp) -> str:
    import re

    found = re.search(r'id="error-code">.*?<span class="code"[^>]*>([a-z_]+)<',
                      resp.get_data(as_text=True), re.S)
    assert found, resp.get_data(as_text=True)[:300]
    return found.group(1)


# -- console --------------------------------------------------------------------------


def test_console_refuses_fapi2_for_a_secret_client_with_the_reason(admin, ctx):
    make_client("weak-rp")
    page = admin.get("/admin/clients/weak-rp")
    html = page.get_data(as_text=True)
    assert 'name="profile"' in html and "安全配置" in html
    refused = admin.post("/admin/clients/weak-rp/edit", data=_edit_form(html, profile="fapi2"))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "不满足 FAPI 2.0 安全配置的要求" in text and "private_key_jwt" in text
    assert _profile("weak-rp") is None and _updates("weak-rp") == []
    refresh()  # the test's app context kept the first request's language
    english = admin.post("/admin/clients/weak-rp/edit?lang=en",
                         data=_edit_form(html, profile="fapi2"))
    assert english.status_code == 400
    assert "does not meet the FAPI 2.0 security profile" in english.get_data(as_text=True)
    unknown = admin.post("/admin/clients/weak-rp/edit", data=_edit_form(html, profile="fapi9"))
    assert unknown.status_code == 400 and _profile("weak-rp") is None


def test_console_sets_fapi2_with_csrf_shows_the_rules_and_par_is_then_required(
        admin, ctx, client):
    rp = keyed_client("keyed-rp")
    html = admin.get("/admin/clients/keyed-rp").get_data(as_text=True)
    assert "必须使用推送授权请求（PAR）" not in html
    no_csrf = _edit_form(html, profile="fapi2")
    no_csrf.pop("csrf_token")
    assert admin.post("/admin/clients/keyed-rp/edit", data=no_csrf).status_code == 400
    assert _profile("keyed-rp") is None
    jwks = json.dumps(db.session.scalar(
        db.select(Client).where(Client.client_id == "keyed-rp")).jwks)
    saved = admin.post("/admin/clients/keyed-rp/edit",
                       data=_edit_form(html, profile="fapi2", jwks=jwks))
    assert saved.status_code == 302, saved.get_data(as_text=True)[:500]
    assert _profile("keyed-rp") == "fapi2"
    shown = admin.get("/admin/clients/keyed-rp").get_data(as_text=True)
    assert "必须使用推送授权请求（PAR）" in shown and "授权码有效期不超过 60 秒" in shown
    assert '<option value="fapi2" selected>' in shown
    assert [e["details"]["profile"] for e in _updates("keyed-rp")] == [
        {"from": None, "to": "fapi2"}]
    # Enforced at once: a direct authorization request (no PAR) is now refused.
    direct = client.get("/authorize", query_string=auth_params(rp))
    assert direct.status_code == 400 and _page_error(direct) == "invalid_request"
    code, _state = code_via_par(client, rp)
    assert code
    cleared = admin.post("/admin/clients/keyed-rp/edit",
                         data=_edit_form(html, profile="", jwks=jwks))
    assert cleared.status_code == 302 and _profile("keyed-rp") is None


def test_console_registers_a_fapi2_client_or_says_why_not(admin, ctx):
    token = form_fields(admin.get("/admin/clients/new").get_data(as_text=True))["csrf_token"]
    base = {"csrf_token": token, "name": "社保", "channel": "web",
            "grant_types": ["authorization_code"], "redirect_uris": REDIRECT,
            "profile": "fapi2"}
    weak = admin.post("/admin/clients/new", data={**base, "client_id": "new-weak",
                                                  "auth_method": "client_secret_basic"})
    assert weak.status_code == 400 and "private_key_jwt" in weak.get_data(as_text=True)
    assert db.session.scalar(db.select(Client).where(Client.client_id == "new-weak")) is None
    from .fapi_helpers import new_key, public_jwks

    made = admin.post("/admin/clients/new", data={
        **base, "client_id": "new-fapi", "auth_method": "private_key_jwt",
        "jwks": json.dumps(public_jwks(new_key()))})
    assert made.status_code == 201, made.get_data(as_text=True)[:500]
    assert _profile("new-fapi") == "fapi2"


# -- admin API --------------------------------------------------------------------------


def test_api_reads_and_writes_the_profile(admin, ctx):
    make_client("weak-rp")
    keyed_client("keyed-rp")
    headers = _headers(admin)
    assert admin.get("/admin/api/clients/keyed-rp").get_json()["profile"] is None
    refused = admin.post("/admin/api/clients/weak-rp", json={"profile": "fapi2"},
                         headers=headers)
    assert refused.status_code == 400
    body = refused.get_json()
    assert body["error"] == "invalid_client_metadata"
    assert "fapi2" in body["error_description"] and "private_key_jwt" in \
        body["error_description"]
    assert _profile("weak-rp") is None
    bad = admin.post("/admin/api/clients/keyed-rp", json={"profile": "fapi1"},
                     headers=headers)
    assert bad.status_code == 400 and _profile("keyed-rp") is None
    ok = admin.post("/admin/api/clients/keyed-rp", json={"profile": "fapi2"}, headers=headers)
    assert ok.status_code == 200 and ok.get_json()["profile"] == "fapi2"
    assert _profile("keyed-rp") == "fapi2"
    # Other changes to a FAPI client are checked against the profile too.
    device = admin.post("/admin/api/clients/keyed-rp",
                        json={"grant_types": ["authorization_code", DEVICE_CODE]},
                        headers=headers)
    assert device.status_code == 400 and _profile("keyed-rp") == "fapi2"
    assert "authorization code" in device.get_json()["error_description"]
    off = admin.post("/admin/api/clients/keyed-rp", json={"profile": None}, headers=headers)
    assert off.status_code == 200 and off.get_json()["profile"] is None
    assert [e["details"].get("profile") for e in _updates("keyed-rp")] == [
        {"from": None, "to": "fapi2"}, {"from": "fapi2", "to": None}]
    spec = admin.get("/admin/api/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    assert "profile" in schemas["ClientChanges"]["properties"]
    assert "profile" in schemas["ClientOut"]["properties"]


# -- CLI ----------------------------------------------------------------------------------


@pytest.fixture
def idp(ctx, monkeypatch):
    from idp.cli import client_manage, clients

    for module in (client_manage, clients):
        monkeypatch.setattr(module, "app_context", contextlib.nullcontext)
    from idp.cli import main

    def run(*args: str):
        db.session.commit()
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        db.session.expire_all()
        return result

    return run


def test_cli_update_profile(idp):
    make_client("weak-rp")
    keyed_client("keyed-rp")
    refused = idp("client", "update", "weak-rp", "--profile", "fapi2")
    assert refused.exit_code == 1 and "private_key_jwt" in refused.stderr
    assert "Traceback" not in refused.stderr and _profile("weak-rp") is None
    done = idp("client", "update", "keyed-rp", "--profile", "fapi2", "--json")
    assert done.exit_code == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["changed"] == ["profile"] and out["client"]["profile"] == "fapi2"
    assert _profile("keyed-rp") == "fapi2"
    shown = json.loads(idp("client", "show", "keyed-rp", "--json").stdout)
    assert shown["profile"] == "fapi2"
    assert idp("client", "update", "keyed-rp", "--profile", "none").exit_code == 0
    assert _profile("keyed-rp") is None
    unknown = idp("client", "update", "keyed-rp", "--profile", "fapi9")
    assert unknown.exit_code == 1 and "fapi2" in unknown.stderr and _profile("keyed-rp") is None
    assert [e["details"]["profile"] for e in _updates("keyed-rp")] == [
        {"from": None, "to": "fapi2"}, {"from": "fapi2", "to": None}]
