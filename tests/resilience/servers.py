"""Real Redis (Sentinel, Cluster) and PostgreSQL (primary + streaming standby) processes
on loopback ports, started and stopped by the tests that need them.

Every helper waits on the server's own answer (PING, ``CLUSTER INFO``, ``pg_isready``,
``SENTINEL get-master-addr-by-name``) with a deadline, never on a fixed sleep."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(n: int) -> list[int]:
    """Ports for cluster nodes: each node also listens on port + 10000 (its cluster bus)."""
    for _ in range(200):
        ports = free_ports(n)
        if all(p < 55000 and _bindable(p + 10000) for p in ports):
            return ports
    raise AssertionError("no free ports for a Redis Cluster")


def wait_for(what: str, ok: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ok():
                return
        except (redis.RedisError, OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def need(binary: str) -> str:
    path = shutil.which(binary) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{binary}"))), None)
    if not path:
        pytest.fail(f"{binary} is required (scripts/setup.sh --test installs it)")
    return path


def scratch_dir(owner: str | None = None) -> Path:
    """A directory under /tmp (pytest's own is private to root: postgres cannot enter it)."""
    path = Path(tempfile.mkdtemp(prefix="idp-resilience-", dir="/tmp"))
    if owner:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


class Processes:
    """Processes started by one test; all stopped at its end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.dirs: list[Path] = []

    def scratch(self) -> Path:
        path = scratch_dir()
        self.dirs.append(path)
        return path

    def remove_dirs(self) -> None:
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)

    def start(self, argv: list[str], log: Path) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- Redis -----------------------------------------------------------------------------------

def redis_server(procs: Processes, root: Path, port: int, *extra: str) -> redis.Redis:
    data = root / f"redis-{port}"
    data.mkdir()
    procs.start([need("redis-server"), "--bind", "127.0.0.1", "--port", str(port),
                 "--save", "", "--appendonly", "no", "--dir", str(data), *extra],
                root / f"redis-{port}.log")
    client = redis.Redis(port=port, socket_timeout=2)
    wait_for(f"redis on {port}", client.ping)
    return client


def sentinel_server(procs: Processes, root: Path, port: int, master_port: int,
                    service: str, down_after_ms: int = 2000) -> redis.Redis:
    conf = root / f"sentinel-{port}.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {root}\n"
                    f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n"
                    f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
                    f"sentinel failover-timeout {service} 10000\n")
    procs.start([need("redis-server"), str(conf), "--sentinel"], root / f"sentinel-{port}.log")
    client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
    wait_for(f"sentinel on {port}", client.ping)
    return client


def cluster(procs: Processes, root: Path, ports: list[int]) -> list[redis.Redis]:
    nodes = [redis_server(procs, root, p, "--cluster-enabled", "yes",
                          "--cluster-config-file", f"nodes-{p}.conf",
                          "--cluster-node-timeout", "2000") for p in ports]
    subprocess.run([need("redis-cli"), "--cluster", "create",
                    *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", "0",
                    "--cluster-yes"], check=True, capture_output=True, timeout=60)
    for port in ports:
        wait_for("cluster_state:ok", lambda p=port: "cluster_state:ok" in subprocess.run(
            [need("redis-cli"), "-p", str(p), "cluster", "info"], capture_output=True,
            text=True, timeout=5).stdout)
    return nodes


# -- PostgreSQL ------------------------------------------------------------------------------

def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def pg_run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(_as_postgres(list(argv)), check=True, capture_output=True,
                          timeout=timeout, text=True)


def pg_ready(port: int) -> bool:
    return subprocess.run([need("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
                          timeout=5).returncode == 0


def pg_start(data: Path, port: int) -> None:
    pg_run(need("pg_ctl"), "-D", str(data), "-l", str(data.parent / f"pg-{port}.log"),
           "-o", f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1", "-w", "start")
    wait_for(f"postgres on {port}", lambda: pg_ready(port))


def pg_stop(data: Path, mode: str = "fast") -> None:
    pg_run(need("pg_ctl"), "-D", str(data), "-m", mode, "-w", "stop")


def pg_primary(root: Path, port: int) -> Path:
    data = root / "primary"
    pg_run(need("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
           "--no-sync")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("wal_level = replica\nmax_wal_senders = 5\nfsync = off\n"
                   "synchronous_commit = on\nhot_standby = on\n")
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write("host replication all 127.0.0.1/32 trust\n")
    pg_start(data, port)
    return data


def pg_standby(root: Path, primary_port: int, port: int) -> Path:
    data = root / "standby"
    pg_run(need("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
           "-D", str(data), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast")
    with (data / "postgresql.conf").open("a") as conf:
        # After the primary restarts, stream again within half a second (default 5 s).
        conf.write("wal_retrieve_retry_interval = 500ms\n")
    pg_start(data, port)
    return data


def pg_streaming(primary_port: int) -> bool:
    """Whether a standby is streaming from the primary on ``primary_port`` — what a
    failover waits for: a fast shutdown then sends it every committed transaction. (After
    a restart of the primary the standby reconnects by itself, but not at once; a
    failover before that would lose what was committed meanwhile.)"""
    out = pg_run(need("psql"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
                 "-Atc", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                 timeout=10)
    return int(out.stdout.strip() or 0) > 0
