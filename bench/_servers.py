"""Starting and stopping the two providers for the benchmark.

``Ours`` makes a throw-away PostgreSQL database and Redis key prefix, runs ``idp init``,
registers the client and the citizen through the CLI and starts ``idp serve``
(gunicorn, gthread). ``Theirs`` starts bench/node/provider.mjs (node-oidc-provider)
with the same client and citizen. Both wait until discovery answers.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE_DIR = BENCH / "node"
VENV_BIN = Path(sys.executable).parent

PG_ADMIN_URL = os.environ.get("IDP_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("IDP_BENCH_REDIS", "redis://127.0.0.1:6379/0")

CLIENT_ID = "bench-rp"
REDIRECT_URI = "https://rp.example/cb"
CITIZEN_NAME = "李四"
CITIZEN_PASSWORD = "Correct-Horse-9"
SCOPE = "openid profile"
CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def citizen_ids(n: int) -> list[str]:
    """``n`` distinct valid GB 11643 ID numbers (Beijing Xicheng, born 1950-1999)."""
    out = []
    for i in range(n):
        year, day, seq = 1950 + i % 50, 1 + (i // 50) % 28, 100 + i // 1400
        body = f"110102{year}{1 + (i // 50 // 28) % 12:02d}{day:02d}{seq:03d}"
        total = sum(int(c) * w for c, w in zip(body, CHECK_WEIGHTS, strict=True))
        out.append(body + "10X98765432"[total % 11])
    return out


def citizens(n: int) -> list[list[str]]:
    """The people the bench signs in: [ID number, name, password] each."""
    return [[number, CITIZEN_NAME, CITIZEN_PASSWORD] for number in citizen_ids(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> dict:
    """Poll the discovery document until it answers 200; return it."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {log}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url + "/.well-known/openid-configuration",
                                        timeout=2) as resp:
                if resp.status == 200:
                    return json.loads(resp.read())
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} not ready after {timeout}s ({last}); see {log}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def endpoint_paths(discovery: dict) -> dict[str, str]:
    def path(key: str) -> str:
        return urllib.parse.urlsplit(discovery[key]).path

    return {
        "authorization": path("authorization_endpoint"),
        "token": path("token_endpoint"),
        "userinfo": path("userinfo_endpoint"),
        "introspection": path("introspection_endpoint"),
        "jwks": path("jwks_uri"),
    }


def stop_process(proc: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group we started (gunicorn master and its workers), then
    SIGKILL what is left."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class Server:
    label: str
    url: str = ""
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    proc: subprocess.Popen | None = None
    log: Path | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    people: int = 32

    def worker_pids(self) -> list[int]:
        raise NotImplementedError

    def all_pids(self) -> list[int]:
        return self.worker_pids()

    def load_config(self) -> dict:
        return {
            "base": self.url,
            "clientId": CLIENT_ID,
            "clientSecret": self.client_secret,
            "redirectUri": REDIRECT_URI,
            "users": [[number, password] for number, _, password in citizens(self.people)],
            "scope": SCOPE,
            "endpoints": self.endpoints,
        }


class Ours(Server):
    """``idp serve`` on PostgreSQL + Redis."""

    def __init__(self, workers: int, threads: int, workdir: Path, people: int = 32,
                 worker_class: str = "gthread"):
        super().__init__(label="ours", people=people)
        self.worker_class = worker_class
        self.workers = workers
        self.threads = threads
        self.workdir = workdir
        self.db_name = "idp_bench_" + secrets.token_hex(4)
        self.redis_prefix = f"idpbench:{secrets.token_hex(4)}:"
        self.instance = Path(tempfile.mkdtemp(prefix="idp-bench-instance-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "IDP_ISSUER": self.url,
            "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.db_name,
            "REDIS_URL": REDIS_URL,
            "IDP_REDIS_PREFIX": self.redis_prefix,
            "IDP_SECRET_KEY": secrets.token_hex(32),
            "IDP_KEK": secrets.token_hex(32),
            "IDP_INSTANCE_PATH": str(self.instance),
        }
        self._db_created = False

    def _idp(self, *args: str) -> dict:
        out = subprocess.run([str(VENV_BIN / "idp"), *args, "--json"], env=self.env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"idp {' '.join(args[:2])} failed: {out.stderr.strip()[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def start(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._db_created = True
        self._idp("init")
        self._idp("client", "add", "--client-id", CLIENT_ID, "--name", "bench relying party",
                  "--secret", self.client_secret, "--redirect-uri", REDIRECT_URI,
                  "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                  "--grant-type", "client_credentials", "--auth-method", "client_secret_basic",
                  "--first-party")
        seeded = subprocess.run([sys.executable, str(BENCH / "_servers.py"), "seed",
                                 str(self.people)], env=self.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        if seeded.returncode != 0:
            raise RuntimeError(f"seeding {self.people} people failed: {seeded.stderr[-2000:]}")
        self.log = self.workdir / "ours-server.log"
        if self.worker_class == "granian":
            # Evaluation only (--worker-class granian): the same app factory under
            # granian's WSGI mode instead of `idp serve` (gunicorn).
            cmd = [str(VENV_BIN / "granian"), "--interface", "wsgi", "--factory",
                   "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(self.workers), "--blocking-threads", str(self.threads),
                   "--access-log", "idp:create_app"]
        else:
            cmd = [str(VENV_BIN / "idp"), "serve", "--host", "127.0.0.1", "--port",
                   str(self.port), "--workers", str(self.workers), "--threads",
                   str(self.threads)]
            if self.worker_class != "gthread":
                cmd += ["--worker-class", self.worker_class]
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=fh,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.endpoints = endpoint_paths(wait_ready(self.url, self.proc, self.log))
        # Workers import the app lazily; wait until all of them are up.
        deadline = time.monotonic() + 30
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        self.notes.append(
            f"gunicorn {self.worker_class}, {self.workers} workers"
            + (f" x {self.threads} threads" if self.worker_class == "gthread" else "") + ", "
            f"PostgreSQL db {self.db_name}, Redis prefix {self.redis_prefix}")

    def worker_pids(self) -> list[int]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children()
                    if c.name() != "py-spy"]
        except psutil.NoSuchProcess:
            return []

    def all_pids(self) -> list[int]:
        return ([self.proc.pid] if self.proc else []) + self.worker_pids()

    def stop(self, keep: bool = False) -> None:
        stop_process(self.proc)
        if keep:
            return
        if self._db_created:
            import psycopg

            try:
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except psycopg.Error as exc:
                print(f"warning: could not drop {self.db_name}: {exc}", file=sys.stderr)
        flush_redis_prefix(self.redis_prefix)
        shutil.rmtree(self.instance, ignore_errors=True)


class Theirs(Server):
    """node-oidc-provider (bench/node/provider.mjs), in-memory or Redis adapter."""

    def __init__(self, adapter: str, workdir: Path, argon2: dict[str, int], people: int = 32):
        super().__init__(label=f"theirs-{adapter}", people=people)
        self.adapter = adapter
        self.workdir = workdir
        self.argon2 = argon2
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_prefix = f"oidcbench:{secrets.token_hex(4)}:"

    def start(self) -> None:
        ensure_node_modules()
        env = {
            **os.environ,
            "NODE_ENV": "production",
            "BENCH_PORT": str(self.port),
            "BENCH_ISSUER": self.url,
            "BENCH_CLIENT_ID": CLIENT_ID,
            "BENCH_CLIENT_SECRET": self.client_secret,
            "BENCH_REDIRECT_URI": REDIRECT_URI,
            "BENCH_USERS": json.dumps(citizens(self.people), ensure_ascii=False),
            "BENCH_ADAPTER": self.adapter,
            "BENCH_REDIS_URL": REDIS_URL,
            "BENCH_REDIS_PREFIX": self.redis_prefix,
            "BENCH_ARGON2_TIME_COST": str(self.argon2["time_cost"]),
            "BENCH_ARGON2_MEMORY_COST": str(self.argon2["memory_cost"]),
            "BENCH_ARGON2_PARALLELISM": str(self.argon2["parallelism"]),
        }
        self.log = self.workdir / f"{self.label}-server.log"
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(["node", "provider.mjs"], cwd=NODE_DIR, env=env,
                                         stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.endpoints = endpoint_paths(wait_ready(self.url, self.proc, self.log))
        self.notes.append(
            "node-oidc-provider " + node_package_version("oidc-provider")
            + f", one Node process, {self.adapter} adapter"
            + (" (LRU of 1000 entries in process memory)" if self.adapter == "memory" else
               f" (ioredis, prefix {self.redis_prefix})")
            + "; accounts in process memory")

    def worker_pids(self) -> list[int]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid]

    def stop(self, keep: bool = False) -> None:
        stop_process(self.proc)
        if self.adapter == "redis" and not keep:
            flush_redis_prefix(self.redis_prefix)


def flush_redis_prefix(prefix: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
    except redis.RedisError as exc:
        print(f"warning: could not flush Redis prefix {prefix}: {exc}", file=sys.stderr)


def ensure_node_modules() -> None:
    if (NODE_DIR / "node_modules" / "oidc-provider").is_dir() and (
            NODE_DIR / "node_modules" / "undici").is_dir():
        return
    print("installing bench/node packages (npm ci) ...", file=sys.stderr)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


def node_package_version(name: str) -> str:
    try:
        data = json.loads((NODE_DIR / "node_modules" / name / "package.json").read_text())
        return data["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except OSError:
        return "?"


def seed(n: int) -> None:
    """``python bench/_servers.py seed N`` (environment as for ``idp``): N citizens with
    the bench password, written as ``idp user add`` writes them (encrypted ID number,
    blind index). The Argon2id hash is computed once and shared, which only saves
    seeding time: a verification costs the same."""
    from idp import create_app
    from idp.accounts import create_person
    from idp.crypto.passwords import hash_password
    from idp.extensions import db

    app = create_app()
    with app.app_context():
        hashed = hash_password(CITIZEN_PASSWORD)
        for number, name, _ in citizens(n):
            person = create_person(number, name, None)
            person.password_hash = hashed
            db.session.commit()
    print(json.dumps({"seeded": n}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "seed":
        sys.path.insert(0, str(ROOT))
        seed(int(sys.argv[2]))
    else:
        sys.exit("usage: _servers.py seed N")
