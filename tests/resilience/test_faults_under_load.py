"""The resilience run: a real ``idp serve`` (gunicorn, 2 workers) on its own PostgreSQL
primary with a streaming standby (initdb + pg_basebackup, ``DATABASE_URL`` naming both
with ``target_session_attrs=read-write``) and its own Redis master with a replica and two
Sentinels (``redis+sentinel://``), under a steady load from several clients — password
sign-ins with code exchange, refresh-token grants and userinfo calls — while faults are
injected one after another:

* kill -9 of one gunicorn worker (the master starts another);
* Redis restart (the master process: back empty — sessions in it are gone, committed
  rows are not);
* Redis Sentinel failover (the replica promoted, the old master made its replica);
* PostgreSQL restart (every pooled connection broken);
* PostgreSQL failover to the standby (the primary stopped, the standby promoted).

Each fault is over when the clients have had ``RECOVERED`` good answers in a row after
it (waited for, never timed). For each it prints the requests failed, the seconds until
the last failure, and the rows lost — which must be 0: every person, client, consent
and merge row there before the fault is there after it unchanged, every refresh-token
(grant) row still there, and ``idp audit verify`` passes through the head recorded
before the fault. While a part is down requests are refused with a 503, never a 500.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis
import requests

from idp.identity.person_id import compute_check_char
from tests.e2e.conftest import LiveIdP, free_port, running
from tests.e2e.test_multi_instance import CITIZEN_ID, CITIZEN_PASSWORD
from tests.resilience import cli, servers
from tests.resilience.test_backup_restore import CLIENT, REDIRECT, _refresh, _tokens
from tests.resilience.test_graceful_shutdown import workers

SERVICE = "idpfaults"
RECOVERED = 15  # good answers in a row after a fault: the clients are served again
STEADY = 30  # ... before the first fault: the load is running
QUICK_SYNC = ("--repl-diskless-sync-delay", "0")


@dataclass
class Topology:
    root: Path
    procs: servers.Processes
    pg_primary: Path
    pg_port: int
    pg_standby: Path
    standby_port: int
    sentinels: list[redis.Redis]
    redis: dict[int, subprocess.Popen] = field(default_factory=dict)
    redis_args: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def start_redis(self, port: int, *extra: str) -> None:
        servers.redis_server(self.procs, self.procs.scratch(), port, *extra)
        self.redis[port], self.redis_args[port] = self.procs.procs[-1], extra

    def redis_master(self) -> int:
        _host, port = self.sentinels[0].execute_command(
            "SENTINEL", "get-master-addr-by-name", SERVICE)
        return int(port)

    def redis_replica_in_sync(self) -> int | None:
        """The port of a replica every Sentinel knows, linked to the master; else None."""
        master = self.redis_master()
        for port in self.redis:
            if port != master and all(_replica_known(s, port) for s in self.sentinels):
                return port
        return None


def _replica_known(sentinel: redis.Redis, port: int) -> bool:
    return any(int(r["port"]) == port and not r.get("is_sdown")
               and r.get("master-link-status") == "ok"
               for r in sentinel.sentinel_slaves(SERVICE))


@pytest.fixture
def topology():
    root = servers.scratch_dir(owner="postgres")
    procs = servers.Processes()
    pg_port, standby_port, master, replica, s1, s2 = servers.free_ports(6)
    try:
        primary = servers.pg_primary(root, pg_port)
        servers.pg_run(servers.need("psql"), "-h", "127.0.0.1", "-p", str(pg_port), "-U",
                       "postgres", "-c", "CREATE DATABASE idp")
        standby = servers.pg_standby(root, pg_port, standby_port)
        t = Topology(root, procs, primary, pg_port, standby, standby_port, [])
        # Replicas sync at once (not after the default 5 s wait for more replicas).
        t.start_redis(master, *QUICK_SYNC)
        t.start_redis(replica, *QUICK_SYNC, "--replicaof", "127.0.0.1", str(master))
        sentinel_root = procs.scratch()
        # A restart of the master must not be taken for its loss: 5 s before a Sentinel
        # fails over by itself (the failover here is asked for, SENTINEL FAILOVER).
        t.sentinels = [servers.sentinel_server(procs, sentinel_root, p, master, SERVICE,
                                               down_after_ms=5000) for p in (s1, s2)]
        servers.wait_for("the Redis replica in sync and known to the Sentinels",
                         lambda: t.redis_replica_in_sync() == replica)
        yield t
    finally:
        procs.stop_all()
        procs.remove_dirs()
        for data in (root / "standby", root / "primary"):
            if (data / "postmaster.pid").exists():
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

    def good_since(self, since: float, count: int = RECOVERED) -> bool:
        tail = [ok for t, ok, _ in self.outcomes if t > since][-count:]
        return len(tail) == count and all(tail)

    def cost(self, since: float) -> dict:
        after = [(t, ok, w) for t, ok, w in self.outcomes if t >= since]
        failed = [(t, w) for t, ok, w in after if not ok]
        return {"requests": len(after), "failed": len(failed),
                "kinds": sorted({w for _, w in failed}),
                "seconds_to_recovery": round(max((t for t, _ in failed), default=since)
                                             - since, 2)}


# Rows compared whole (nothing in the load changes them) and rows only counted (a
# refresh grant rotates its token: the row's rotated_at changes, the row stays).
WHOLE = {"person": "id", "client": "client_id", "consent": "person_id || '/' || client_id",
         "merge_record": "id::text"}
KEPT = {"refresh_token": "id::text"}


def _rows(conninfo: str) -> dict[str, dict[str, str]]:
    with psycopg.connect(conninfo) as conn:
        out = {t: dict(conn.execute(f"SELECT {k}, md5(t::text) FROM {t} t").fetchall())  # noqa: S608
               for t, k in WHOLE.items()}
        out.update({t: {r[0]: "" for r in conn.execute(f"SELECT {k} FROM {t}")}  # noqa: S608
                    for t, k in KEPT.items()})
    return out


def _lost(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> dict:
    """Per table, the rows there before that are gone or changed."""
    out = {}
    for table, rows in before.items():
        bad = [k for k, digest in rows.items()
               if k not in after[table] or (table in WHOLE and after[table][k] != digest)]
        if bad:
            out[table] = bad
    return out


def _id_number(n: int) -> str:
    first17 = f"11010519800101{n:03d}"
    return first17 + compute_check_char(first17)


def _provision(env: dict[str, str]) -> str:
    """The signing-in citizen, two more persons merged into one (a merge row), the
    client; its secret."""
    cli.run(env, "init")
    cli.run(env, "user", "add", "--id-number", CITIZEN_ID, "--name", "韧性测试",
            "--password", CITIZEN_PASSWORD)
    a, b = (cli.run(env, "user", "add", "--id-number", _id_number(n), "--name", "合并测试",
                    "--password", secrets.token_urlsafe(12))["id"] for n in (11, 13))
    cli.run(env, "merge", "persons", a, b, "--force", "--reason", "韧性测试：同一人两个账号")
    return cli.run(env, "client", "add", "--client-id", CLIENT, "--name", "韧性测试应用",
                   "--redirect-uri", REDIRECT)["client_secret"]


def test_faults_under_load(topology, tmp_path):
    t = topology
    hosts = f"host=127.0.0.1:{t.pg_port}&host=127.0.0.1:{t.standby_port}"
    conninfo = (f"host=127.0.0.1,127.0.0.1 port={t.pg_port},{t.standby_port} dbname=idp "
                f"user=postgres target_session_attrs=read-write connect_timeout=5")
    sentinels = ",".join(f"127.0.0.1:{s.connection_pool.connection_kwargs['port']}"
                         for s in t.sentinels)
    env = {"DATABASE_URL": f"postgresql://postgres@/idp?{hosts}&target_session_attrs=read-write",
           "REDIS_URL": f"redis+sentinel://{sentinels}/{SERVICE}",
           "IDP_REDIS_PREFIX": "res:", "IDP_SECRET_KEY": secrets.token_hex(32),
           "IDP_KEK": secrets.token_hex(32), "IDP_DB_CONNECT_TIMEOUT": "2"}
    idp = LiveIdP(port=free_port(), issuer="http://127.0.0.1:9/res", shared_env=env,
                  instance_path=tmp_path / "idp")
    secret = _provision(idp.env)
    table = []

    def kill_worker() -> None:
        victim = sorted(workers(master))[0]
        os.kill(victim, signal.SIGKILL)
        servers.wait_for("a new worker", lambda: len(workers(master)) == 2
                         and victim not in workers(master), timeout=120)

    def restart_redis() -> None:
        # As a service manager restarts it: SIGTERM (redis-server lets its replica
        # catch up, then exits), and the same command line again.
        port = t.redis_master()
        t.redis[port].terminate()
        t.redis[port].wait(60)
        t.start_redis(port, *t.redis_args[port])

    def sentinel_failover() -> None:
        old = t.redis_master()

        def asked() -> bool:  # refused (INPROG, NOGOODSLAVE) until the Sentinel can
            t.sentinels[0].execute_command("SENTINEL", "FAILOVER", SERVICE)
            return True

        servers.wait_for("the Sentinel taking the failover", asked, timeout=120)
        servers.wait_for("the replica promoted", lambda: t.redis_master() != old and redis.Redis(
            port=t.redis_master(), socket_timeout=2).info("replication")["role"] == "master",
            timeout=120)
        # Over when the Sentinels have made the old master a replica (they look every
        # 10 s): until then it still takes the writes of connections opened before.
        servers.wait_for("the old master demoted", lambda: redis.Redis(
            port=old, socket_timeout=2).info("replication")["role"] == "slave", timeout=120)

    def restart_postgres() -> None:
        servers.pg_stop(t.pg_primary)
        servers.pg_start(t.pg_primary, t.pg_port)

    def postgres_failover() -> None:
        # A fast shutdown sends the standby all of the primary's WAL before it exits.
        servers.pg_stop(t.pg_primary)
        servers.pg_run(servers.need("pg_ctl"), "-D", str(t.pg_standby), "-w", "promote")

    faults = [("kill -9 of one worker", kill_worker), ("Redis restart", restart_redis),
              ("Redis Sentinel failover", sentinel_failover),
              ("PostgreSQL restart", restart_postgres),
              ("PostgreSQL failover to standby", postgres_failover)]
    with running(idp, serve_args=("--workers", "2", "--threads", "4")):
        master = idp.proc.pid
        # The citizen's first sign-in (the consent page) before the clients start, so the
        # steady load is sign-ins, grants and userinfo calls alone. (Three first consents
        # at once raced on the consent row, a 500: test_concurrent_consent.py.)
        _tokens(idp, secret)
        with Clients(idp, secret) as load:
            servers.wait_for("steady load", lambda: load.good_since(0, STEADY), timeout=120)
            for name, fault in faults:
                # A failover is made to a replica that is up to date, as a failover
                # manager checks first: after the restarts, wait until it is again.
                if name == "Redis Sentinel failover":
                    servers.wait_for("the Redis replica in sync",
                                     lambda: t.redis_replica_in_sync() is not None,
                                     timeout=120)
                if name == "PostgreSQL failover to standby":
                    servers.wait_for("the standby streaming",
                                     lambda: servers.pg_streaming(t.pg_port), timeout=120)
                head = cli.run(env, "audit", "head")
                before = _rows(conninfo)
                started = time.monotonic()
                fault()
                took = time.monotonic() - started
                servers.wait_for(f"recovery after {name}",
                                 lambda s=started: load.good_since(s), timeout=180)
                cost = {**load.cost(started), "fault_seconds": round(took, 2)}
                lost = _lost(before, _rows(conninfo))
                code, verified, err = cli.run(env, "audit", "verify", "--expected-head",
                                              f"{head['seq']}:{head['hash']}", check=False)
                table.append((name, cost, lost, {"ok": code == 0 and bool(verified)
                                                 and verified["ok"], "error": err}))
    # "fault took": the fault itself, e.g. from SIGTERM to the restarted server's first
    # PONG; "seconds to recovery": from its start to the last request that failed.
    print("\nfault                           fault took  requests  failed  "
          "seconds to recovery  rows lost  audit")
    for name, cost, lost, verified in table:
        print(f"{name:<31} {cost['fault_seconds']:>9}s  {cost['requests']:>8}  "
              f"{cost['failed']:>6}  {cost['seconds_to_recovery']:>19}  "
              f"{sum(map(len, lost.values())):>9}  {'ok' if verified['ok'] else 'BROKEN'}"
              f"   {cost['kinds']}")
    rows = _rows(conninfo)
    print(f"rows checked after every fault: {', '.join(f'{len(v)} {k}' for k, v in rows.items())}")
    assert rows["merge_record"] and rows["consent"] and rows["refresh_token"]
    errors = _server_errors(idp)
    if errors:
        print(f"server log, errors:\n{errors}")
    for name, cost, lost, verified in table:
        assert lost == {}, (name, lost)
        assert verified["ok"], (name, verified)
        # Refused clearly (503) while a part was down, never a 500.
        assert not any(k.endswith(" 500") for k in cost["kinds"]), (name, cost, errors)
    # No request ended in the app's last-resort handler (a 500 with a stack trace in the
    # log). Libraries may log tracebacks of their own while a server is going away (the
    # connection pool resetting a dead connection): printed above, not failures.
    assert "unhandled error" not in errors, errors


def _server_errors(idp: LiveIdP) -> str:
    """The server log's ERROR lines and tracebacks (what a 500 leaves behind), except
    gunicorn's note of the worker this test killed."""
    out, in_trace = [], False
    for line in idp.log_path.read_text(errors="replace").splitlines():
        if line.startswith("Traceback"):
            in_trace = True
        elif in_trace and not line.startswith((" ", "\t")) and ":" in line[:80]:
            out.append(line)  # the exception line ends the traceback
            in_trace = False
            continue
        if in_trace or (("ERROR" in line or "CRITICAL" in line)
                        and "was sent SIGKILL" not in line):
            out.append(line)
    return "\n".join(out)[:12000]
