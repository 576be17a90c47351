"""The ``idp`` command: --json output, one-line errors, non-zero exits."""

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


def test_init_is_idempotent_and_reports_keys(run):
    out = json.loads(run("init", "--json").stdout)
    assert out["new_keys"] == []  # made by the first init
    keys = json.loads(run("keys", "list", "--json").stdout)
    assert {k["alg"] for k in keys} >= {"ES256", "RS256", "SM2SM3"}


def test_user_add(run):
    res = run("user", "add", "--id-number", "110105 19491231 002x", "--name", "王五",
              "--password", "long-enough-1", "--phone", "139 1234 5678", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["id_number"] == "110105********002X"  # masked even for the operator
    dup = run("user", "add", "--id-number", "11010519491231002X", "--name", "王五",
              "--password", "long-enough-1")
    assert dup.exit_code == 1 and "already exists" in dup.stderr
    assert len(dup.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--id-number", "110105194912310021"], "check character should be 'X'"),
    (["--id-number", "12345"], "invalid ID number"),
    (["--id-number", "11010519491231002X", "--phone", "12345"], "invalid phone"),
])
def test_user_add_errors(run, args, message):
    base = {"--name": "王五", "--password": "long-enough-1"}
    full = ["user", "add", *args]
    for k, v in base.items():
        full += [k, v]
    res = run(*full)
    assert res.exit_code == 1 and message in res.stderr
    assert "Traceback" not in res.stderr


def test_client_add_and_errors(run):
    res = run("client", "add", "--client-id", "web1", "--redirect-uri", "https://a.example/cb",
              "--post-logout-redirect-uri", "https://a.example/", "--allow-scope", "idcard",
              "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["token_endpoint_auth_method"] == "client_secret_basic" and out["client_secret"]
    pub = json.loads(run("client", "add", "--client-id", "app1", "--public", "--redirect-uri",
                         "cn.gov.app:/cb", "--json").stdout)
    assert pub["token_endpoint_auth_method"] == "none" and pub["client_secret"] is None
    for bad, message in [
        (["--client-id", "web1", "--redirect-uri", "https://a.example/cb"], "already exists"),
        (["--client-id", "x", "--redirect-uri", "http://evil.example/cb"], "https"),
        (["--client-id", "y", "--redirect-uri", "https://a.example/cb#f"], "fragment"),
        (["--client-id", "z", "--redirect-uri", "https://a.example/cb", "--allow-scope", "all"],
         "unknown sensitive scope"),
        (["--client-id", "p", "--public", "--grant-type", "client_credentials"],
         "public clients"),
        (["--client-id", "k", "--auth-method", "private_key_jwt", "--redirect-uri",
          "https://a.example/cb"], "--jwks"),
    ]:
        res = run("client", "add", *bad)
        assert res.exit_code != 0 and message in res.stderr, (bad, res.stderr)


def test_client_add_in_person_checks_only_for_hall_ciba_clients(run):
    ciba = "urn:openid:params:grant-type:ciba"
    res = run("client", "add", "--client-id", "hall-a", "--channel", "hall", "--grant-type", ciba,
              "--in-person-checks", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["in_person_checks"] is True
    plain = json.loads(run("client", "add", "--client-id", "hall-b", "--channel", "hall",
                           "--grant-type", ciba, "--json").stdout)
    assert "in_person_checks" not in plain
    for bad in (["--client-id", "line", "--channel", "hotline", "--grant-type", ciba],
                ["--client-id", "web", "--redirect-uri", "https://a.example/cb"],
                ["--client-id", "hall-c", "--channel", "hall", "--grant-type",
                 "client_credentials"]):
        res = run("client", "add", *bad, "--in-person-checks")
        assert res.exit_code == 1 and "in-person checks" in res.stderr, (bad, res.stderr)
        assert "Traceback" not in res.stderr
    from idp.cli import app_context
    from idp.clients import find_client

    with app_context():
        assert find_client("hall-a").meta("in_person_checks") is True
        assert find_client("hall-b").meta("in_person_checks") is None
        assert find_client("line") is None
    added = [json.loads(x) for x in run("audit", "export", "--since", "0").stdout.splitlines()]
    assert [x["details"]["in_person_checks"] for x in added
            if x["event"] == "admin.client.add"] == [True, False]


def test_keys_rotate(run):
    before = json.loads(run("keys", "list", "--json").stdout)
    out = json.loads(run("keys", "rotate", "--alg", "RS256", "--json").stdout)
    after = json.loads(run("keys", "list", "--json").stdout)
    assert len(after) == len(before) + 1
    status = {k["kid"]: k["status"] for k in after}
    assert status[out["kid"]] == "active"
    assert list(status.values()).count("active") == 3  # one per algorithm: ES256, RS256, SM2SM3
    bad = run("keys", "rotate", "--alg", "HS256")
    assert bad.exit_code == 1 and "unsupported algorithm" in bad.stderr


def test_admin_commands_are_audited_and_the_chain_verifies(run):
    run("user", "add", "--id-number", "11010519491231002X", "--name", "王五",
        "--password", "long-enough-1")
    run("client", "add", "--client-id", "web1", "--redirect-uri", "https://a.example/cb")
    run("keys", "rotate", "--alg", "SM2SM3")
    lines = [json.loads(x) for x in run("audit", "export", "--since", "0").stdout.splitlines()]
    events = [x["event"] for x in lines]
    assert events == ["admin.user.add", "admin.client.add", "keys.rotate"]
    assert all(x["actor"].startswith("cli:") for x in lines)
    assert "11010519491231002X" not in json.dumps(lines, ensure_ascii=False)
    res = run("audit", "verify", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["count"] == 3


def test_shared_database_without_kek_is_refused_with_a_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.delenv("IDP_KEK", raising=False)
    res = CliRunner().invoke(main, ["keys", "list"])
    assert res.exit_code == 1 and "IDP_KEK must be set" in res.stderr
    assert "Traceback" not in res.stderr


def test_org_commands(run):
    for number, name in (("11010519491231002X", "法人"), ("110101199003070011", "经办人")):
        assert run("user", "add", "--id-number", number, "--name", name,
                   "--password", "long-enough-1").exit_code == 0
    res = run("org", "add", "--uscc", "91350100m000100y43", "--name", "福州某某科技有限公司",
              "--legal-rep", "11010519491231002X", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["uscc"] == "91350100M000100Y43"
    bad = run("org", "add", "--uscc", "91350100M000100Y44", "--name", "x", "--legal-rep",
              "11010519491231002X")
    assert bad.exit_code == 1 and "check" in bad.stderr
    res = run("org", "grant", "--uscc", "91350100M000100Y43", "--id-number", "110101199003070011",
              "--role", "agent", "--scope", "tax", "--until", "2099-12-31", "--json")
    assert res.exit_code == 0, res.stderr
    past = run("org", "grant", "--uscc", "91350100M000100Y43", "--id-number",
               "110101199003070011", "--scope", "tax", "--until", "2001-01-01")
    assert past.exit_code == 1 and "future" in past.stderr
    listed = json.loads(run("org", "list", "--json").stdout)
    members = listed[0]["members"]
    assert {m["role"] for m in members} == {"legal_rep", "agent"}
    assert all("*" in m["id_number"] for m in members)  # masked for the operator too
    res = run("org", "revoke", "--uscc", "91350100M000100Y43", "--id-number",
              "110101199003070011", "--json")
    assert res.exit_code == 0 and len(json.loads(res.stdout)["revoked"]) == 1
    again = run("org", "revoke", "--uscc", "91350100M000100Y43", "--id-number",
                "110101199003070011")
    assert again.exit_code == 1 and "no revocable appointment" in again.stderr


def test_legacy_import_and_review_from_the_command_line(run, tmp_path):
    run("user", "add", "--id-number", "11010519491231002X", "--name", "李四",
        "--password", "long-enough-1")
    (tmp_path / "users.csv").write_bytes(
        "用户编号,姓名,身份证号\nu1,李四,11010519491231002X\nu2,李斯,11010519491231002X\n"
        "u3,钱七,110105194912310021\n".encode("gbk"))
    (tmp_path / "shebao.toml").write_text(
        '[source]\nname = "shebao-2012"\nkind = "csv"\n\n'
        '[fields]\nlegacy_id = "用户编号"\nname = "姓名"\nid_number = "身份证号"\n\n'
        '[csv]\npath = "users.csv"\nencoding = "auto"\n', encoding="utf-8")
    cfg = str(tmp_path / "shebao.toml")
    dry = json.loads(run("legacy", "import", "--config", cfg, "--dry-run", "--json").stdout)
    assert (dry["read"], dry["merged"], dry["queued"], dry["invalid"]) == (3, 1, 1, 1)
    # Worker processes parse and encrypt ahead; the outcome is the serial run's.
    res = run("legacy", "import", "--config", cfg, "--workers", "2", "--json")
    assert res.exit_code == 0, res.stderr
    assert (json.loads(res.stdout)["merged"], json.loads(res.stdout)["queued"]) == (1, 1)
    again = json.loads(run("legacy", "import", "--config", cfg, "--workers", "0",
                           "--json").stdout)
    assert again["unchanged"] == 3
    queue = json.loads(run("merge", "list", "--json").stdout)["items"]
    assert {q["reason"] for q in queue} == {"id_number_name_differs",
                                           "invalid_id_number:check_digit"}
    assert all("*" in q["id_number"] for q in queue)  # masked for the operator
    differs = next(q for q in queue if q["reason"] == "id_number_name_differs")
    assert json.loads(run("merge", "approve", str(differs["id"]), "--json").stdout)["state"] \
        == "approved"
    assert json.loads(run("merge", "undo", str(differs["id"]), "--json").stdout)["state"] \
        == "pending"
    bad = run("legacy", "import", "--config", str(tmp_path / "missing.toml"))
    assert bad.exit_code == 1 and "Traceback" not in bad.stderr
    negative = run("legacy", "import", "--config", cfg, "--workers", "-1")
    assert negative.exit_code != 0 and "--workers" in negative.stderr
    assert "Traceback" not in negative.stderr
    events = [json.loads(x)["event"] for x in
              run("audit", "export", "--since", "0").stdout.splitlines()]
    assert events.count("legacy.import") == 2 and "legacy.approve" in events
    assert "legacy.undo" in events
