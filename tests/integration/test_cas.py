"""CAS protocol 3.0 server (issue 13): registration of CAS services, the ticket
endpoints, attribute release, renew/gateway, proxy tickets and single logout."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from idp.cas.services import PatternError, check_pattern, matches
from idp.cli import main


@pytest.fixture
def run(tmp_path, monkeypatch):
    """``idp`` on its own embedded instance (the CLI builds its own app)."""
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    for var in ("DATABASE_URL", "REDIS_URL", "IDP_DATABASE_URL", "IDP_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()

    def _run(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    assert _run("init", "--json").exit_code == 0
    return _run


# -- registration -----------------------------------------------------------------------

def test_cli_registers_a_cas_service(run):
    res = run("client", "add", "--client-id", "cas1", "--protocol", "cas",
               "--service", "https://portal.example.gov.cn/app/*", "--min-level", "L3",
               "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["protocol"] == "cas" and out["client_secret"] is None
    assert out["services"] == ["https://portal.example.gov.cn/app/*"]
    assert out["min_level"] == "L3"
    again = run("client", "add", "--client-id", "cas1", "--protocol", "cas",
                "--service", "https://portal.example.gov.cn/", "--json")
    assert again.exit_code != 0 and "already exists" in again.stderr


@pytest.mark.parametrize("args,message", [
    (["--protocol", "cas"], "needs at least one --service"),
    (["--protocol", "cas", "--service", "http://portal.example.gov.cn/"], "https"),
    (["--protocol", "cas", "--service", "https://a.gov.cn*"], "wildcard"),
    (["--protocol", "cas", "--service", "https://*.gov.cn/"], "only at the end"),
    (["--protocol", "cas", "--service", "https://u@a.gov.cn/"], "user"),
    (["--protocol", "cas", "--service", "https://a.gov.cn/", "--redirect-uri",
      "https://a.gov.cn/cb"], "no OAuth settings"),
    (["--service", "https://a.gov.cn/"], "for CAS clients"),
])
def test_cli_refuses_bad_cas_registrations(run, args, message):
    res = run("client", "add", "--client-id", "bad", *args, "--json")
    assert res.exit_code != 0
    assert message in json.loads(res.stderr)["error"]


def test_oauth_endpoints_do_not_serve_a_cas_client(client, ctx):
    from idp.clients import find_client, register_client

    register_client(client_id="cas1", name="CAS", protocol="cas",
                    services=["https://portal.example.gov.cn/"], min_level="L3")
    row = find_client("cas1")
    assert row.protocol == "cas" and row.min_level == "L3" and row.grant_types == []
    resp = client.post("/token", data={"grant_type": "client_credentials",
                                       "client_id": "cas1"})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("pattern,service,ok", [
    ("https://a.gov.cn/app/*", "https://a.gov.cn/app/x?y=1", True),
    ("https://a.gov.cn/app/*", "https://a.gov.cn/other", False),
    ("https://a.gov.cn/", "https://a.gov.cn/", True),
    ("https://a.gov.cn/", "https://a.gov.cn/x", False),
    ("https://a.gov.cn/*", "https://a.gov.cn/\\\\evil.example/", False),
    ("https://a.gov.cn/*", "https://a.gov.cn/ x", False),
    ("https://a.gov.cn/*", "https://a.gov.cn/\tx", False),
])
def test_service_patterns(pattern, service, ok):
    assert check_pattern(pattern) == pattern
    assert matches(pattern, service) is ok


def test_a_pattern_never_admits_another_host():
    with pytest.raises(PatternError):
        check_pattern("https://a.gov.cn*")
    assert not matches("https://a.gov.cn/*", "https://a.gov.cn.evil.example/")
