#!/usr/bin/env python3
"""What one request of each hot endpoint costs, in process: CPU time, SQL statements
and Redis round trips per operation, on PostgreSQL + Redis.

    .venv/bin/python bench/hotpath_bench.py [--ops 300] [--smoke]

The provider runs in this process (Flask's test client, one thread, no HTTP server), so
the figures leave out gunicorn and the network and are much steadier than
bench/oidc_bench.py's on a shared machine: the statement and round-trip counts do not
depend on the machine's load at all. Use it to see what a change to a hot path does;
use oidc_bench.py for the comparison with node-oidc-provider. Scenarios:
client_credentials, code (codes put in the store beforehand, as the authorization
endpoint writes them), refresh (rotating), userinfo, introspection, discovery, jwks.
A benchmark: nothing here is asserted but "no errors" (tests/bench runs ``--smoke``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("IDP_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("IDP_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SCENARIOS = ["client_credentials", "code", "refresh", "userinfo", "introspection",
             "discovery", "jwks"]
CLIENT_ID, REDIRECT = "bench-hot", "https://rp.example/cb"


class Counters:
    """SQL statements (SQLAlchemy cursor executions) and Redis round trips (a command,
    or one pipeline however many commands it holds)."""

    def __init__(self, engine):
        import redis
        from sqlalchemy import event

        self.sql = self.redis = 0
        event.listen(engine, "before_cursor_execute", self._on_sql)
        counters = self
        plain, piped = redis.Redis.execute_command, redis.client.Pipeline.execute

        def execute_command(client, *args, **kwargs):
            counters.redis += 1
            return plain(client, *args, **kwargs)

        def execute(pipe, *args, **kwargs):
            counters.redis += 1
            return piped(pipe, *args, **kwargs)

        redis.Redis.execute_command = execute_command
        redis.client.Pipeline.execute = execute

    def _on_sql(self, *args, **kwargs) -> None:
        self.sql += 1

    def snapshot(self) -> tuple[int, int]:
        return self.sql, self.redis


def basic(secret: str) -> dict[str, str]:
    raw = f"{CLIENT_ID}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def mint_code(person_id: str) -> tuple[str, str]:
    """A code as the authorization endpoint stores it (idp.oidc.grants
    AuthorizationCodeGrant.save_authorization_code), with its PKCE verifier."""
    from idp.store import store

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code = secrets.token_urlsafe(32)
    store().set(f"code:{code}", {
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": "openid profile",
        "person_id": person_id, "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256",
        "auth_time": int(time.time()), "acr": "L2", "amr": ["pwd"],
        "sid": secrets.token_hex(8), "acr_values": None, "membership_id": None,
        "channel": None, "act": None, "gid": secrets.token_hex(16), "dpop_jkt": None,
        "resource": None, "claims": None}, 600)
    return code, verifier


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=300, help="operations per scenario")
    ap.add_argument("--warmup", type=int, default=30, help="unmeasured operations first")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--smoke", action="store_true", help="a few operations each")
    ap.add_argument("--json", dest="json_out", default=None, help="also write results here")
    args = ap.parse_args(argv)
    if args.smoke:
        args.ops, args.warmup = 5, 2
    scenarios = [s for s in args.scenarios.split(",") if s]

    import psycopg

    db_name = "idp_hot_" + secrets.token_hex(4)
    prefix = f"idphot:{secrets.token_hex(4)}:"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    instance = tempfile.mkdtemp(prefix="idp-hot-")
    try:
        return run(args, scenarios, db_name, prefix, instance)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])


def run(args, scenarios: list[str], db_name: str, prefix: str, instance: str) -> int:
    from idp import create_app
    from idp.accounts import create_person
    from idp.bootstrap import initialise
    from idp.clients import register_client
    from idp.extensions import db

    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    app = create_app({"ISSUER": "http://127.0.0.1:5000", "DATABASE_URL": url,
                      "REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix,
                      "KEK": secrets.token_hex(32), "SECRET_KEY": secrets.token_hex(32)},
                     instance_path=instance)
    secret = secrets.token_urlsafe(32)
    with app.app_context():
        initialise()
        register_client(client_id=CLIENT_ID, name="hot path bench", secret=secret,
                        auth_method="client_secret_basic", redirect_uris=[REDIRECT],
                        grant_types=["authorization_code", "refresh_token",
                                     "client_credentials"],
                        post_logout_redirect_uris=[], first_party=True, channel="web")
        person_id = create_person("11010519491231002X", "李四", None).id
        counters = Counters(db.engine)
    http = app.test_client()
    auth = basic(secret)
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def token(data: dict) -> dict:
        r = http.post("/token", data=data, headers=auth)
        if r.status_code != 200:
            raise RuntimeError(f"token {data.get('grant_type')}: {r.status_code} {r.text[:200]}")
        return r.get_json()

    def code_tokens() -> dict:
        with app.app_context():
            code, verifier = mint_code(person_id)
        return token({"grant_type": "authorization_code", "code": code,
                      "redirect_uri": REDIRECT, "code_verifier": verifier})

    first = code_tokens()
    access = first["access_token"]
    chain = {"rt": first["refresh_token"]}
    pending_codes: list[tuple[str, str]] = []

    def op_code() -> None:
        code, verifier = pending_codes.pop()
        token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
               "code_verifier": verifier})

    def op_refresh() -> None:
        chain["rt"] = token({"grant_type": "refresh_token",
                             "refresh_token": chain["rt"]})["refresh_token"]

    def op_userinfo() -> None:
        r = http.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
        if r.status_code != 200 or not r.get_json().get("sub"):
            raise RuntimeError(f"userinfo: {r.status_code} {r.text[:200]}")

    def op_introspection() -> None:
        r = http.post("/introspect", data={"token": access}, headers={**auth, **form})
        if r.status_code != 200 or r.get_json().get("active") is not True:
            raise RuntimeError(f"introspection: {r.status_code} {r.text[:200]}")

    def op_get(path: str):
        def op() -> None:
            r = http.get(path)
            if r.status_code != 200:
                raise RuntimeError(f"GET {path}: {r.status_code}")
        return op

    ops = {
        "client_credentials": lambda: token({"grant_type": "client_credentials"}),
        "code": op_code,
        "refresh": op_refresh,
        "userinfo": op_userinfo,
        "introspection": op_introspection,
        "discovery": op_get("/.well-known/openid-configuration"),
        "jwks": op_get("/jwks"),
    }
    results = {}
    for name in scenarios:
        if name == "code":
            with app.app_context():
                pending_codes[:] = [mint_code(person_id)
                                    for _ in range(args.ops + args.warmup)]
        for _ in range(args.warmup):
            ops[name]()
        sql0, redis0 = counters.snapshot()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(args.ops):
            ops[name]()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        sql1, redis1 = counters.snapshot()
        results[name] = {"ops": args.ops, "cpu_ms_per_op": round(cpu * 1000 / args.ops, 3),
                         "wall_ms_per_op": round(wall * 1000 / args.ops, 3),
                         "sql_per_op": round((sql1 - sql0) / args.ops, 2),
                         "redis_per_op": round((redis1 - redis0) / args.ops, 2),
                         "errors": 0}
        r = results[name]
        print(f"{name:<20} {r['cpu_ms_per_op']:7.2f} CPU-ms/op  {r['wall_ms_per_op']:7.2f} "
              f"wall-ms/op  {r['sql_per_op']:5.2f} SQL/op  {r['redis_per_op']:5.2f} "
              f"Redis round trips/op", flush=True)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"(one thread, in process; load average {load}; statements counted by "
          f"SQLAlchemy, round trips by redis-py; background audit chaining included)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"load_average": load,
                                                   "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
