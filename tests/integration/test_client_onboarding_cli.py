"""``idp client initial-token | pending | approve | reject`` against a fresh instance,
with the registration made over HTTP to that same instance."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from idp.cli import main


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("IDP_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("IDP_ARGON2_MEMORY_COST", "8192")
    for var in ("DATABASE_URL", "REDIS_URL", "IDP_DATABASE_URL", "IDP_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()

    def _run(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    assert _run("init", "--json").exit_code == 0
    return _run


def _register(token: str) -> str:
    from idp import create_app

    app = create_app({"ISSUER": "http://localhost"})
    with app.app_context():
        resp = app.test_client().post("/connect/register", headers={
            "Authorization": f"Bearer {token}"}, json={
            "client_name": "公积金系统", "redirect_uris": ["https://gjj.example/cb"],
            "scope": "openid idcard"})
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["client_id"]


def test_initial_token_then_pending_then_approve(run):
    out = run("client", "initial-token", "--note", "公积金中心", "--ttl", "3600", "--json")
    assert out.exit_code == 0, out.output
    issued = json.loads(out.output)
    assert issued["expires_in"] == 3600 and len(issued["initial_access_token"]) > 30
    cid = _register(issued["initial_access_token"])
    pending = json.loads(run("client", "pending", "--json").output)
    assert pending["total"] == 1
    assert pending["items"][0]["requested"]["sensitive_scopes"] == ["idcard"]
    assert pending["items"][0]["requested"]["note"] == "公积金中心"
    approved = run("client", "approve", cid, "--grant-sensitive", "--json")
    assert approved.exit_code == 0, approved.output
    body = json.loads(approved.output)
    assert body["status"] == "active" and body["sensitive_scopes"] == ["idcard"]
    again = run("client", "approve", cid, "--json")
    assert again.exit_code == 1 and "not awaiting approval" in json.loads(again.output)["error"]


def test_reject_and_errors_are_one_line(run):
    token = json.loads(run("client", "initial-token", "--json").output)["initial_access_token"]
    cid = _register(token)
    assert json.loads(run("client", "reject", cid, "--reason", "材料不全", "--json").output)[
        "status"] == "rejected"
    assert json.loads(run("client", "pending", "--json").output)["total"] == 0
    missing = run("client", "reject", "nobody", "--json")
    assert missing.exit_code == 1 and "nobody" in json.loads(missing.output)["error"]
    bad_ttl = run("client", "initial-token", "--ttl", "5", "--json")
    assert bad_ttl.exit_code != 0
