"""The resilience run: a real ``idp serve`` (gunicorn, 2 workers) on its own PostgreSQL
cluster and its own redis-server, under a steady load from several clients — password
sign-ins with code exchange, refresh-token grants and userinfo calls — while faults are
injected one after another:

* kill -9 of one gunicorn worker (the master starts another);
* Redis restart (an empty store: sessions in it are gone, committed rows are not);
* PostgreSQL restart (every pooled connection broken).

For each fault it prints the requests failed and the seconds until every client was
served again, and asserts that nothing committed was lost: every person, refresh token
and client row there before is there after, and the audit chain verifies through the
head recorded before the faults. (A failover to a promoted standby and a Sentinel
failover, under load, are in test_postgres_failover.py and test_redis_topologies.py.)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import threading
import time

import psycopg
import pytest
import redis
import requests

from tests.e2e.conftest import LiveIdP, free_port, running
from tests.e2e.test_multi_instance import CITIZEN_ID, CITIZEN_PASSWORD
from tests.resilience import servers
from tests.resilience.test_backup_restore import CLIENT, REDIRECT, _refresh, _tokens
from tests.resilience.test_graceful_shutdown import workers


@pytest.fixture
def own_backends():
    root = servers.scratch_dir(owner="postgres")
    procs = servers.Processes()
    pg_port, redis_port = servers.free_ports(2)
    data = None
    try:
        data = servers.pg_primary(root, pg_port)
        servers.pg_run(servers.need("psql"), "-h", "127.0.0.1", "-p", str(pg_port), "-U",
                       "postgres", "-c", "CREATE DATABASE idp")
        redis_root = procs.scratch()
        servers.redis_server(procs, redis_root, redis_port)
        yield {"redis_proc": procs.procs[-1], "pg_data": data, "pg_port": pg_port,
               "redis_port": redis_port, "procs": procs}
    finally:
        procs.stop_all()
        procs.remove_dirs()
        if data is not None and (data / "postmaster.pid").exists():
            servers.pg_stop(data, "immediate")
        shutil.rmtree(root, ignore_errors=True)


class Clients:
    """Several clients, each in a loop of: a password sign-in and code exchange, then
    refresh-token grants and userinfo calls; every outcome kept with its time."""

    def __init__(self, idp: LiveIdP, secret: str, n: int = 3):
        self.idp, self.secret = idp, secret
        self.outcomes: list[tuple[float, bool, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _note(self, ok: bool, what: str) -> None:
        self.outcomes.append((time.monotonic(), ok, what))

    def _run(self) -> None:
        tokens = None
        while not self._stop.is_set():
            try:
                if tokens is None:
                    tokens = _tokens(self.idp, self.secret)
                    self._note(True, "sign-in")
                for _ in range(3):
                    resp = requests.get(self.idp.url("/userinfo"), timeout=10, headers={
                        "Authorization": "Bearer " + tokens["access_token"]})
                    self._note(resp.status_code == 200, f"userinfo {resp.status_code}")
                resp = _refresh(self.idp, self.secret, tokens["refresh_token"])
                self._note(resp.status_code == 200, f"refresh {resp.status_code}")
                if resp.status_code == 200:
                    tokens = resp.json()
                else:
                    tokens = None  # start over with a sign-in
            except (requests.RequestException, AssertionError, KeyError) as exc:
                self._note(False, type(exc).__name__)
                tokens = None
            self._stop.wait(0.05)

    def __enter__(self) -> Clients:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def good_since(self, since: float, count: int = 15) -> bool:
        tail = [ok for t, ok, _ in self.outcomes if t > since][-count:]
        return len(tail) == count and all(tail)

    def cost(self, since: float) -> dict:
        after = [(t, ok, w) for t, ok, w in self.outcomes if t >= since]
        failed = [(t, w) for t, ok, w in after if not ok]
        return {"requests": len(after), "failed": len(failed),
                "kinds": sorted({w for _, w in failed}),
                "seconds_to_recovery": round(max((t for t, _ in failed), default=since)
                                             - since, 2)}


def _rows(url: str) -> dict[str, set]:
    with psycopg.connect(url) as conn:
        return {table: {r[0] for r in conn.execute(f"SELECT {key} FROM {table}")}  # noqa: S608
                for table, key in (("person", "id"), ("refresh_token", "id"),
                                   ("client", "client_id"))}


def test_faults_under_load(own_backends, tmp_path):
    b = own_backends
    url = f"postgresql://postgres@127.0.0.1:{b['pg_port']}/idp"
    env = {"DATABASE_URL": url, "REDIS_URL": f"redis://127.0.0.1:{b['redis_port']}/0",
           "IDP_REDIS_PREFIX": "res:", "IDP_SECRET_KEY": secrets.token_hex(32),
           "IDP_KEK": secrets.token_hex(32), "IDP_DB_CONNECT_TIMEOUT": "2"}
    idp = LiveIdP(port=free_port(), issuer="http://127.0.0.1:9/res", shared_env=env,
                  instance_path=tmp_path / "idp")
    idp.run_cli("init")
    idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "韧性测试",
                "--password", CITIZEN_PASSWORD)
    secret = idp.run_cli("client", "add", "--client-id", CLIENT, "--name", "韧性测试应用",
                         "--redirect-uri", REDIRECT)["client_secret"]
    table = []
    with running(idp, serve_args=("--workers", "2", "--threads", "4")):
        master = idp.proc.pid
        with Clients(idp, secret) as load:
            servers.wait_for("steady load", lambda: load.good_since(0, 30), timeout=60)
            before_head = idp.run_cli("audit", "head")
            before = _rows(url)

            def inject(name: str, fault) -> None:
                started = time.monotonic()
                fault()
                servers.wait_for(f"recovery after {name}",
                                 lambda: load.good_since(started), timeout=90)
                table.append((name, load.cost(started)))

            def kill_worker() -> None:
                victim = sorted(workers(master))[0]
                os.kill(victim, signal.SIGKILL)
                servers.wait_for("a new worker", lambda: len(workers(master)) == 2
                                 and victim not in workers(master))

            def restart_redis() -> None:
                client = redis.Redis(port=b["redis_port"], socket_timeout=2)
                with contextlib.suppress(redis.RedisError):
                    client.shutdown(nosave=True)
                b["redis_proc"].wait(10)
                servers.redis_server(b["procs"], b["procs"].scratch(), b["redis_port"])

            def restart_postgres() -> None:
                servers.pg_stop(b["pg_data"])
                servers.pg_start(b["pg_data"], b["pg_port"])

            inject("kill -9 of one worker", kill_worker)
            inject("Redis restart", restart_redis)
            inject("PostgreSQL restart", restart_postgres)
    after = _rows(url)
    verified = idp.run_cli("audit", "verify", "--expected-head",
                           f"{before_head['seq']}:{before_head['hash']}")
    print("\nfault                      requests  failed  seconds to recovery  rows lost")
    lost = sum(len(before[t] - after[t]) for t in before)
    for name, cost in table:
        print(f"{name:<26} {cost['requests']:>8}  {cost['failed']:>6}  "
              f"{cost['seconds_to_recovery']:>19}  {lost:>9}   {cost['kinds']}")
    assert lost == 0, {t: before[t] - after[t] for t in before}
    assert verified["ok"]
    for _name, cost in table:  # refused clearly (503) while a part was down, never a 500
        assert not any(k.endswith(" 500") for k in cost["kinds"]), cost
