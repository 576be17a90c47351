"""Disaster-recovery drill: ``idp backup`` of a running provider, ``idp restore`` into a
fresh PostgreSQL database (and a fresh Redis prefix: the store is lost in a disaster),
and a provider started on the restored database:

* the JWKS is the same (signing keys came back, still sealed under the same KEK);
* a refresh token issued before the backup still works;
* people sign in with their passwords;
* ``idp audit verify`` passes, up to and past the head the manifest recorded.

And what must be refused: a restore under another KEK (before anything is written), into
a database that is not empty, or of an altered dump; the dump never holds the KEK."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import requests

from tests import backends
from tests.e2e.conftest import LiveIdP, backend_env, free_port, running
from tests.e2e.test_multi_instance import CITIZEN_ID, CITIZEN_PASSWORD, REDIRECT, sign_in
from tests.e2e.test_multi_instance import query as redirect_query
from tests.resilience import cli

CLIENT = "dr-drill"
ONE_WORKER = ("--workers", "1")  # the drill is about the data, not the workers


def _params() -> tuple[dict[str, str], str]:
    import base64
    import hashlib

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return {"response_type": "code", "client_id": CLIENT, "redirect_uri": REDIRECT,
            "scope": "openid profile", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
            "code_challenge_method": "S256"}, verifier


def _tokens(idp: LiveIdP, secret: str) -> dict:
    params, verifier = _params()
    location, _trail = sign_in(requests.Session(), idp, params)
    resp = requests.post(idp.url("/token"), auth=(CLIENT, secret), timeout=10, data={
        "grant_type": "authorization_code", "code": redirect_query(location)["code"],
        "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _refresh(idp: LiveIdP, secret: str, refresh_token: str) -> requests.Response:
    return requests.post(idp.url("/token"), auth=(CLIENT, secret), timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token})


@pytest.fixture
def fresh_database():
    name, url = backends.create_pg_database()
    try:
        yield url
    finally:
        backends.drop_pg_database(name)


def test_backup_restore_drill(tmp_path: Path, fresh_database):
    with backend_env() as shared:
        primary = LiveIdP(port=free_port(), issuer="http://127.0.0.1:9/dr",
                          shared_env=shared, instance_path=tmp_path / "primary")
        # Preparation and checks run the idp commands in-process (tests/resilience/cli.py);
        # the drill's own steps, `idp backup` and `idp restore`, run as the operator's.
        cli.run(primary.env, "init")
        cli.run(primary.env, "user", "add", "--id-number", CITIZEN_ID, "--name", "灾备演练",
                "--password", CITIZEN_PASSWORD)
        secret = cli.run(primary.env, "client", "add", "--client-id", CLIENT, "--name",
                         "灾备演练应用", "--redirect-uri", REDIRECT)["client_secret"]
        dump = tmp_path / "idp.dump"
        with running(primary, serve_args=ONE_WORKER):
            jwks = requests.get(primary.url("/jwks"), timeout=10).json()
            before = _tokens(primary, secret)
            # Taken while the provider runs (one pg_dump snapshot).
            backup_started = time.monotonic()
            made = primary.run_cli("backup", "--output", str(dump))
            backup_took = time.monotonic() - backup_started
        assert made["persons"] == 1 and made["kek_id"] and made["sha256"]
        data = dump.read_bytes()
        kek = shared["IDP_KEK"]
        assert kek.encode() not in data and bytes.fromhex(kek) not in data
        assert kek not in dump.with_name(dump.name + ".manifest.json").read_text()

        # The disaster: a new database, a new (empty) Redis, the KEK from the vault.
        restored_env = {**shared, "DATABASE_URL": fresh_database,
                        "IDP_REDIS_PREFIX": backends.redis_prefix()}
        standby = LiveIdP(port=free_port(), issuer="http://127.0.0.1:9/dr",
                          shared_env=restored_env, instance_path=tmp_path / "restored")
        # Under another KEK nothing is restored, and the database stays empty.
        wrong = LiveIdP(port=free_port(), issuer="http://127.0.0.1:9/dr",
                        shared_env={**restored_env, "IDP_KEK": secrets.token_hex(32)},
                        instance_path=tmp_path / "wrong")
        code, _out, err = cli.run(wrong.env, "restore", str(dump), check=False)
        assert code == 1 and "IDP_KEK" in err

        started = time.monotonic()
        out = standby.run_cli("restore", str(dump))
        restore_took = time.monotonic() - started
        assert out["audit_ok"] and out["persons"] == 1
        assert cli.run(standby.env, "init")["new_keys"] == []  # at head: a no-op
        with running(standby, serve_args=ONE_WORKER):
            ready = time.monotonic() - started
            assert requests.get(standby.url("/jwks"), timeout=10).json() == jwks
            resp = _refresh(standby, secret, before["refresh_token"])
            assert resp.status_code == 200, resp.text
            assert resp.json()["access_token"]
            after = _tokens(standby, secret)  # a password sign-in on the restored data
            assert after["id_token"]
        verified = cli.run(standby.env, "audit", "verify", "--expected-head", made["audit_head"])
        assert verified["ok"]
        print(f"\nrestore drill: 1. `idp backup` of the running provider: {made['bytes']} "
              f"bytes, {made['seconds']}s in pg_dump, {backup_took:.1f}s for the command; "
              f"2. `idp restore` into a fresh database: {out['seconds']}s restoring, "
              f"{restore_took:.1f}s for the command; 3. `idp init` (a no-op) and `idp serve`: "
              f"the restored provider serving {ready:.1f}s after the restore began; "
              f"4. same JWKS, a refresh token from before the backup and a password "
              f"sign-in work, `idp audit verify` passes through the recorded head")

        # A second restore onto the now populated database is refused.
        code, _out, err = cli.run(standby.env, "restore", str(dump), check=False)
        assert code == 1 and "not empty" in err
        # So is an altered dump.
        bad = tmp_path / "bad.dump"
        bad.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        bad.with_name(bad.name + ".manifest.json").write_text(
            dump.with_name(dump.name + ".manifest.json").read_text())
        code, _out, err = cli.run(standby.env, "restore", str(bad), check=False)
        assert code == 1 and "manifest" in err
