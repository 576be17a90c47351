"""Configuration is checked when the app is made: a setting that cannot work stops
``idp serve`` with one line naming it and the fix, not a traceback or a 500 later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from idp import settings
from idp.settings import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("IDP_") or key in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(key)


def check(tmp_path, **overrides):
    cfg = settings.load(str(tmp_path), {"ISSUER": "http://localhost", **overrides})
    settings.validate(cfg, instance_path=str(tmp_path))


def refused(tmp_path, **overrides) -> str:
    with pytest.raises(ConfigError) as info:
        check(tmp_path, **overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_defaults_and_the_test_settings_pass(tmp_path):
    check(tmp_path)
    check(tmp_path, ARGON2_TIME_COST=1, ARGON2_MEMORY_COST=8 * 1024,
          BACKCHANNEL_LOGOUT_BACKOFF=0.05, CHANNEL_DEMOS=True, TRUSTED_PROXIES=0,
          SMS_GATEWAY="dev", FACE_VERIFIER="off", REALNAME_VERIFIER="dev")


def test_a_malformed_number_from_the_environment_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_LOCKOUT_THRESHOLD", "five")
    with pytest.raises(ConfigError, match="IDP_LOCKOUT_THRESHOLD='five' is not a whole number"):
        settings.load(str(tmp_path))
    monkeypatch.setenv("IDP_LOCKOUT_THRESHOLD", "5")
    monkeypatch.setenv("IDP_FACE_MIN_SCORE", "high")
    with pytest.raises(ConfigError, match="IDP_FACE_MIN_SCORE='high' is not a number"):
        settings.load(str(tmp_path))
    monkeypatch.delenv("IDP_FACE_MIN_SCORE")
    monkeypatch.setenv("IDP_LANGUAGES", '["zh_CN"')
    with pytest.raises(ConfigError, match="IDP_LANGUAGES"):
        settings.load(str(tmp_path))


@pytest.mark.parametrize("key, value, says", [
    ("ACCESS_TOKEN_TTL", -5, "IDP_ACCESS_TOKEN_TTL=-5 must be more than 0"),
    ("AUTH_REQUEST_TTL", 0, "IDP_AUTH_REQUEST_TTL=0 must be more than 0"),
    ("LOCKOUT_THRESHOLD", 0, "IDP_LOCKOUT_THRESHOLD=0 must be more than 0"),
    ("TRUSTED_PROXIES", -1, "IDP_TRUSTED_PROXIES=-1 must be 0 or more"),
    ("LOCKOUT_THRESHOLD", 2.5, "must be a whole number"),
    ("SMS_CODE_TTL", True, "must be a number"),
    ("SMS_CODE_TTL", "300", "must be a number"),
    ("UPSTREAM_TIMEOUT", float("nan"), "must be a finite number"),
    ("KIOSK_FACE_MIN_SCORE", 80, "must be between 0 and 1"),
])
def test_numbers_that_cannot_work_are_refused(tmp_path, key, value, says):
    assert says in refused(tmp_path, **{key: value})


def test_zero_is_accepted_where_it_means_none(tmp_path):
    check(tmp_path, TRUSTED_PROXIES=0, TOTP_WINDOW=0, SMS_PHONE_INTERVAL=0)


@pytest.mark.parametrize("issuer", [
    "localhost:5000", "ftp://id.example.gov.cn", "https://", "https://id.example.gov.cn/?x=1",
    "https://id.example.gov.cn/#top", "https://user@id.example.gov.cn",
    "https://id.example.gov.cn:99999", "https://[::1", None, 42])
def test_the_issuer_must_be_an_http_address(tmp_path, issuer):
    assert "IDP_ISSUER" in refused(tmp_path, ISSUER=issuer)


def test_good_issuers(tmp_path):
    for issuer in ("https://id.example.gov.cn", "https://id.example.gov.cn/idp/",
                   "http://127.0.0.1:5000"):
        check(tmp_path, ISSUER=issuer)


def test_certificate_sign_in_needs_a_readable_ca_file(tmp_path):
    assert "IDP_CERT_CA_FILE must name" in refused(tmp_path, CERT_LOGIN=True)
    missing = str(tmp_path / "nowhere" / "ca.pem")
    message = refused(tmp_path, CERT_LOGIN=True, CERT_CA_FILE=missing)
    assert f"IDP_CERT_CA_FILE: the CA bundle '{missing}' does not exist" in message
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    check(tmp_path, CERT_LOGIN=True, CERT_CA_FILE=str(ca))
    assert "IDP_CERT_CRL_FILE" in refused(tmp_path, CERT_LOGIN=True, CERT_CA_FILE=str(ca),
                                         CERT_CRL_FILE=str(tmp_path / "crl.pem"))
    assert "regular expression" in refused(tmp_path, CERT_ID_FIELD=r"\((\d{17}")


def test_upstream_files_are_found_against_the_instance_folder(tmp_path):
    assert "'up.toml' does not exist" in refused(tmp_path, UPSTREAM_IDPS=["up.toml"])
    (tmp_path / "up.toml").write_text("")
    check(tmp_path, UPSTREAM_IDPS=["up.toml", {"name": "inline"}])


@pytest.mark.parametrize("key, value, says", [
    ("SMS_GATEWAY", "nowhere_such_module.sms:Gateway",
     "IDP_SMS_GATEWAY='nowhere_such_module.sms:Gateway': module 'nowhere_such_module.sms' "
     "cannot be imported"),
    ("REALNAME_VERIFIER", "idp.plugins:NoSuchVerifier", "module 'idp.plugins' has no"),
    ("FACE_VERIFIER", "idp.plugins", "must be 'dev' or 'package.module:Class'"),
    ("ORG_REGISTRY", "idp.plugins:OFF", "'OFF' is not a class"),
    ("SMS_GATEWAY", "http", "IDP_SMS_HTTP_URL must be set"),
])
def test_plug_in_paths_are_loaded_at_start(tmp_path, key, value, says):
    assert says in refused(tmp_path, **{key: value})


def test_built_in_and_importable_plug_ins_pass(tmp_path):
    check(tmp_path, SMS_GATEWAY="http", SMS_HTTP_URL="https://sms.example/send",
          REALNAME_VERIFIER="off", FACE_VERIFIER="dev",
          ORG_REGISTRY="idp.orgs:NoRegistry")


def test_a_bad_kek_is_named_but_never_shown(tmp_path):
    message = refused(tmp_path, KEK="secret-but-too-short")
    assert "IDP_KEK must be 32 bytes" in message and "secret-but-too-short" not in message


def test_every_problem_is_on_the_one_line(tmp_path):
    message = refused(tmp_path, ACCESS_TOKEN_TTL=-1, PASSWORD_HASH="md5",
                      ACCESS_TOKEN_ALG="HS256")
    assert message.count("; ") == 2
    assert "IDP_PASSWORD_HASH='md5'" in message and "IDP_ACCESS_TOKEN_ALG='HS256'" in message


def test_signing_algorithms_match_what_the_key_ring_can_make():
    from idp.crypto.keys import SIGNING_ALGS

    assert set(settings.SIGNING_ALGS) == set(SIGNING_ALGS)


def test_the_app_factory_refuses_to_build(tmp_path):
    from idp import create_app

    with pytest.raises(ConfigError, match="IDP_ID_TOKEN_TTL"):
        create_app({"ISSUER": "http://localhost", "ID_TOKEN_TTL": -1},
                   instance_path=str(tmp_path))


def run_idp(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "idp", *args], cwd=ROOT,
                          env={**os.environ, "IDP_INSTANCE_PATH": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["serve", "init"])
def test_idp_serve_and_init_stop_with_one_readable_line(tmp_path, command):
    done = run_idp(tmp_path, command, IDP_LOCKOUT_THRESHOLD="x")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "listening" not in done.stdout
    assert done.stderr.count("\n") == 1 and "IDP_LOCKOUT_THRESHOLD='x'" in done.stderr

    done = run_idp(tmp_path, command, IDP_SMS_GATEWAY="nowhere_such_module:Gateway")
    assert done.returncode == 1 and "listening" not in done.stdout
    assert done.stderr.count("\n") == 1 and "IDP_SMS_GATEWAY" in done.stderr
