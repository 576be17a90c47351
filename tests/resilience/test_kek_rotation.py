"""Key-encryption key rotation while the provider runs.

``idp init`` stored the data keys wrapped under KEK A (adopting the keys the data was
derived with: nothing re-encrypted). The rotation, as an operator does it:

1. the provider redeployed with IDP_KEK=B, IDP_KEK_PREVIOUS=A; ``idp kek status`` /
   ``idp kek rotate`` while it keeps serving sign-ins and userinfo;
2. then a provider under B alone: people sign in (blind indexes unchanged), refresh
   tokens from before work, the JWKS is the same (signing keys unwrap);
3. A alone is now refused with a message naming the KEK, never silently: the command
   exits 1, and a worker still started with A answers 503 (the "暂时无法登录" page,
   ``temporarily_unavailable``), fails ``/readyz`` and logs how to fix it — never a 500.

The rotation re-wraps four data keys whatever the number of people, so the suite runs
it on a database of ``PEOPLE`` (10 000) persons; ``bench/kek_rotation_bench.py`` runs
the same rotation on 100 000 and reports its time.
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path

import psycopg
import requests

from tests.e2e.conftest import LiveIdP, backend_env, free_port, running
from tests.resilience import cli
from tests.resilience.test_backup_restore import CLIENT, REDIRECT, _refresh, _tokens

PEOPLE = 10_000


def more_people(url: str, n: int) -> None:
    """``n`` more person rows, copies of the one there with their own ids and indexes
    (the rotation must not care how many there are: it never reads them)."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'person' ORDER BY ordinal_position")]
        fresh = {"id": "substr(md5('p' || g), 1, 32)",
                 "id_number_idx": "md5('i' || g) || md5('j' || g)",
                 "phone_idx": "NULL", "phone_enc": "NULL"}
        select = ", ".join(fresh.get(c, f"t.{c}") for c in cols)
        conn.execute(f"INSERT INTO person ({', '.join(cols)}) SELECT {select} "  # noqa: S608
                     f"FROM (SELECT * FROM person LIMIT 1) t, generate_series(1, {n}) g")


def prepare(env: dict[str, str], people: int) -> str:
    """A provisioned database of ``people`` persons (one who signs in) and the test
    client; its secret."""
    from tests.e2e.test_multi_instance import CITIZEN_ID, CITIZEN_PASSWORD

    cli.run(env, "init")
    cli.run(env, "user", "add", "--id-number", CITIZEN_ID, "--name", "轮换演练",
            "--password", CITIZEN_PASSWORD)
    secret = cli.run(env, "client", "add", "--client-id", CLIENT, "--name", "轮换演练应用",
                     "--redirect-uri", REDIRECT)["client_secret"]
    more_people(env["DATABASE_URL"], people - 1)
    return secret


def _stale_worker(shared: dict[str, str], old: str, tmp_path: Path, caplog) -> None:
    """What a worker started with only the old KEK after the rotation answers."""
    from idp import create_app
    from idp.extensions import db

    app = create_app({"ISSUER": "http://127.0.0.1:9/kek", "KEK": old,
                      "DATABASE_URL": shared["DATABASE_URL"], "REDIS_URL": shared["REDIS_URL"],
                      "REDIS_PREFIX": shared["IDP_REDIS_PREFIX"],
                      "SECRET_KEY": shared["IDP_SECRET_KEY"]},
                     instance_path=str(tmp_path / "stale"))
    browser = app.test_client()
    with caplog.at_level(logging.INFO):
        page = browser.get(f"/authorize?response_type=code&client_id={CLIENT}"
                           f"&redirect_uri={REDIRECT}&scope=openid")
        api = browser.get("/userinfo", headers={"Authorization": "Bearer x"})
        jwks = browser.get("/jwks", headers={"Accept": "application/json"})
        ready = browser.get("/readyz")
    assert page.status_code == 503 and "暂时无法登录" in page.get_data(as_text=True)
    assert page.headers["Retry-After"]
    assert api.status_code == 503, api.get_data(as_text=True)
    assert api.get_json()["error"] == "temporarily_unavailable"
    assert jwks.status_code == 503 and jwks.get_json()["error"] == "temporarily_unavailable"
    assert ready.status_code == 503 and ready.get_json()["failing"] == ["signing_keys"]
    assert "restart with the new IDP_KEK" in ready.get_json()["checks"]["signing_keys"]
    fixes = [r for r in caplog.records if "restart it with the new key as IDP_KEK" in r.message]
    assert len(fixes) >= 3 and all(r.levelno == logging.ERROR for r in fixes)
    assert not any(r.exc_info for r in caplog.records), "a stack trace was logged"
    assert not any("unhandled error" in r.message for r in caplog.records)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_rotation_while_serving(tmp_path: Path, caplog):
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    with backend_env() as shared:
        shared["IDP_KEK"] = old

        def node(name: str, **env: str) -> LiveIdP:
            return LiveIdP(port=free_port(), issuer="http://127.0.0.1:9/kek",
                           shared_env={**shared, **env}, instance_path=tmp_path / name)

        secret = prepare(node("old").env, PEOPLE)
        # Step 1 of the procedure: the provider is redeployed with both keys.
        rotating = node("rotating", IDP_KEK=new, IDP_KEK_PREVIOUS=old)
        with running(rotating):
            jwks = requests.get(rotating.url("/jwks"), timeout=10).json()
            before = _tokens(rotating, secret)  # data keys still under the old KEK
            status = cli.run(rotating.env, "kek", "status")
            assert status["state"] == "rotating" and status["pending"] == 4
            started = time.monotonic()
            out = rotating.run_cli("kek", "rotate")  # the operator's command, a process
            took = time.monotonic() - started
            assert out["rewrapped"] == 4 and out["pending"] == 0
            assert out["state"].startswith("complete")
            # The provider serving through the rotation goes on.
            assert requests.get(rotating.url("/userinfo"), timeout=10, headers={
                "Authorization": "Bearer " + before["access_token"]}).status_code == 200
            assert _tokens(rotating, secret)["access_token"]
        print(f"\nKEK rotation on {PEOPLE} people: {out['seconds']}s in the database, "
              f"{took:.2f}s for the whole `idp kek rotate` command")
        assert cli.run(rotating.env, "kek", "rotate")["rewrapped"] == 0  # nothing to do

        under_new = node("new", IDP_KEK=new)
        assert cli.run(under_new.env, "kek", "status")["state"] == "complete"
        with running(under_new, serve_args=("--workers", "1")):
            assert requests.get(under_new.url("/jwks"), timeout=10).json() == jwks
            resp = _refresh(under_new, secret, before["refresh_token"])
            assert resp.status_code == 200, resp.text
            assert _tokens(under_new, secret)["id_token"]  # password sign-in: same index

        # The old KEK alone no longer opens the data keys: refused by name.
        code, _out, err = cli.run(node("stale").env, "kek", "rotate", check=False)
        assert code == 1 and "IDP_KEK_PREVIOUS" in err
        _stale_worker(shared, old, tmp_path, caplog)
