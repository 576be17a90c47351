"""Key-encryption key rotation while the provider runs, on a database of 100 000 people.

``idp init`` stored the data keys wrapped under KEK A (adopting the keys the data was
derived with: nothing re-encrypted). The rotation, as an operator does it:

1. the provider redeployed with IDP_KEK=B, IDP_KEK_PREVIOUS=A; ``idp kek status`` /
   ``idp kek rotate`` while it keeps serving sign-ins and userinfo;
2. then a provider under B alone: people sign in (blind indexes unchanged), refresh
   tokens from before work, the JWKS is the same (signing keys unwrap);
3. A alone is now refused with a message naming the KEK, never silently.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import psycopg
import requests

from tests.e2e.conftest import LiveIdP, backend_env, free_port, running
from tests.resilience.test_backup_restore import CLIENT, REDIRECT, _refresh, _tokens

PEOPLE = 100_000


def _more_people(url: str, n: int) -> None:
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


def test_rotation_on_100k_people_while_serving(tmp_path: Path):
    from tests.e2e.test_multi_instance import CITIZEN_ID, CITIZEN_PASSWORD

    old, new = secrets.token_hex(32), secrets.token_hex(32)
    with backend_env() as shared:
        shared["IDP_KEK"] = old

        def node(name: str, **env: str) -> LiveIdP:
            return LiveIdP(port=free_port(), issuer="http://127.0.0.1:9/kek",
                           shared_env={**shared, **env}, instance_path=tmp_path / name)

        under_old = node("old")
        under_old.run_cli("init")
        under_old.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "轮换演练",
                          "--password", CITIZEN_PASSWORD)
        secret = under_old.run_cli("client", "add", "--client-id", CLIENT, "--name",
                                   "轮换演练应用", "--redirect-uri", REDIRECT)["client_secret"]
        _more_people(shared["DATABASE_URL"], PEOPLE - 1)
        with running(under_old):
            jwks = requests.get(under_old.url("/jwks"), timeout=10).json()
            before = _tokens(under_old, secret)
        # Step 1 of the procedure: the provider is redeployed with both keys.
        rotating = node("rotating", IDP_KEK=new, IDP_KEK_PREVIOUS=old)
        with running(rotating):
            assert _tokens(rotating, secret)["access_token"]  # data keys still under old
            status = rotating.run_cli("kek", "status")
            assert status["state"] == "rotating" and status["pending"] == 4
            started = time.monotonic()
            out = rotating.run_cli("kek", "rotate")
            took = time.monotonic() - started
            assert out["rewrapped"] == 4 and out["pending"] == 0
            assert out["state"].startswith("complete")
            # The provider serving through the rotation goes on.
            assert requests.get(rotating.url("/userinfo"), timeout=10, headers={
                "Authorization": "Bearer " + before["access_token"]}).status_code == 200
            assert _tokens(rotating, secret)["access_token"]
        print(f"\nKEK rotation on {PEOPLE} people: {out['seconds']}s in the database, "
              f"{took:.2f}s for the whole `idp kek rotate` command")
        assert rotating.run_cli("kek", "rotate")["rewrapped"] == 0  # again: nothing to do

        under_new = node("new", IDP_KEK=new)
        assert under_new.run_cli("kek", "status")["state"] == "complete"
        with running(under_new):
            assert requests.get(under_new.url("/jwks"), timeout=10).json() == jwks
            resp = _refresh(under_new, secret, before["refresh_token"])
            assert resp.status_code == 200, resp.text
            assert _tokens(under_new, secret)["id_token"]  # password sign-in: same index

        # The old KEK alone no longer opens the data keys: refused by name.
        code, _out, err = node("stale").run_cli("kek", "rotate", check=False)
        assert code == 1 and "IDP_KEK_PREVIOUS" in err
