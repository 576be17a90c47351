"""End-to-end harness: the real ``idp`` command, run as separate processes.

Nothing here imports the application: the provider is started with ``idp serve``
(gunicorn) against a throw-away PostgreSQL database and Redis key prefix, and is
configured and inspected only through its environment, its CLI and HTTP.

``LiveIdP`` is one provider process (plus the CLI bound to the same settings);
``backend_env`` makes the shared state (database, Redis prefix, secret key) that one
or several ``LiveIdP`` instances run against.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import backends

E2E_DIR = Path(__file__).resolve().parent
ROOT = E2E_DIR.parents[1]
ARTIFACTS = ROOT / "test-artifacts"

# Cheap password hashing and quick back-channel retries: these tests are about the
# protocol between processes, not about Argon2 cost parameters.
FAST_SETTINGS = {
    "IDP_ARGON2_TIME_COST": "1",
    "IDP_ARGON2_MEMORY_COST": str(8 * 1024),
    "IDP_BACKCHANNEL_LOGOUT_BACKOFF": "0.2",
    # The channel demo pages (consoles, kiosk screen, app simulator) are part of what
    # these tests drive; with an external database they are off unless asked for.
    "IDP_CHANNEL_DEMOS": "true",
    # Development plug-ins (on their own only in the embedded default): SMS codes to the
    # instance's outbox file, the real-name register and face match answered locally.
    "IDP_SMS_GATEWAY": "dev",
    "IDP_REALNAME_VERIFIER": "dev",
    "IDP_FACE_VERIFIER": "dev",
}

DEMO_CITIZEN_ID = "110105199003071239"
DEMO_CITIZEN_PASSWORD = "Demo@2026"
DEMO_PHONE = "13800138000"  # the demo citizen's


def idp_command() -> list[str]:
    """The ``idp`` console script of the interpreter running the tests."""
    script = Path(sys.executable).parent / "idp"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "idp"]


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(span: int = 1) -> int:
    """A port P such that P .. P+span-1 are all free on 127.0.0.1 right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + span - 1 <= 65535 and all(_bindable(port + i) for i in range(span)):
            return port
    raise RuntimeError(f"no run of {span} free ports found")


_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Should the test runner itself be killed (CI time-out, SIGKILL), the kernel sends
    the server SIGTERM, so not even then is a provider left running."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _clean_environ() -> dict[str, str]:
    """The test process's environment without any provider settings of the developer's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("IDP_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def backend_env() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database, a Redis key prefix and a secret key; removed afterwards.

    Every provider process given this environment shares all of its state."""
    problem = backends.pg_available() or backends.redis_available()
    if problem:
        pytest.fail(f"PostgreSQL/Redis on 127.0.0.1 are required (scripts/services.sh starts "
                    f"them): {problem}")
    name, url = backends.create_pg_database()
    prefix = backends.redis_prefix()
    try:
        yield {"DATABASE_URL": url, "REDIS_URL": backends.REDIS_URL,
               "IDP_REDIS_PREFIX": prefix, "IDP_SECRET_KEY": secrets.token_hex(32),
               "IDP_KEK": secrets.token_hex(32)}
    finally:
        backends.flush_redis_prefix(prefix)
        backends.drop_pg_database(name)


class LiveIdP:
    """One ``idp serve`` process and the CLI with the same environment.

    ``issuer`` is what the provider calls itself (IDP_ISSUER); ``base_url`` is where this
    particular process listens. They differ when several instances share one issuer."""

    def __init__(self, *, port: int, issuer: str, instance_path: Path, shared_env: dict[str, str],
                 host: str = "127.0.0.1", url_host: str | None = None):
        self.port = port
        self.issuer = issuer.rstrip("/")
        self.host = host
        self.base_url = f"http://{url_host or host}:{port}"
        self.instance_path = Path(instance_path)
        self.instance_path.mkdir(parents=True, exist_ok=True)
        self.log_path = self.instance_path / f"serve-{port}.log"
        self.env = {**_clean_environ(), **FAST_SETTINGS, **shared_env,
                    "IDP_ISSUER": self.issuer, "IDP_INSTANCE_PATH": str(self.instance_path),
                    # gunicorn (27+) opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl,
                    # else at ~/.gunicorn/gunicorn.ctl, one path for every server on the
                    # machine: give each provider process its own.
                    "XDG_RUNTIME_DIR": str(self.instance_path)}
        self.proc: subprocess.Popen | None = None
        self._log_fh = None

    # -- the CLI -------------------------------------------------------------
    def run_cli(self, *args: str, check: bool = True, timeout: float = 60) -> Any:
        """Run ``idp ARGS --json`` with this provider's environment; parsed JSON output.

        With ``check=False`` returns ``(returncode, parsed stdout or None, stderr)``."""
        argv = [*idp_command(), *args]
        if "--json" not in args:
            argv.append("--json")
        res = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                             timeout=timeout, cwd=ROOT, check=False)
        parsed = _parse_json(res.stdout)
        if not check:
            return res.returncode, parsed, res.stderr
        if res.returncode != 0:
            raise AssertionError(f"`idp {' '.join(args)}` exited {res.returncode}:\n"
                                 f"{res.stderr}\n{res.stdout}")
        if parsed is None:
            raise AssertionError(f"`idp {' '.join(args)}` printed no JSON:\n{res.stdout}")
        return parsed

    # -- the server ----------------------------------------------------------
    def start(self, *serve_args: str, timeout: float = 120) -> LiveIdP:
        argv = [*idp_command(), "serve", "--host", self.host, "--port", str(self.port),
                *serve_args]
        self._log_fh = open(self.log_path, "ab")  # closed in wait_stopped()
        # A session of its own: stop() signals the whole process group (gunicorn
        # master and workers), so nothing outlives the test run.
        self.proc = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = self.base_url + "/.well-known/openid-configuration"
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"idp serve exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                resp = requests.get(url, timeout=2)
                if resp.status_code == 200 and resp.json().get("issuer") == self.issuer:
                    return
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
            except (requests.RequestException, ValueError) as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise RuntimeError(f"idp serve not ready on {url} after {timeout}s ({last}):\n"
                           f"{self.log_tail()}")

    def stop(self, timeout: float = 15) -> None:
        self.terminate()
        self.wait_stopped(timeout)

    def terminate(self) -> None:
        """Ask the process group (gunicorn master and workers) to shut down."""
        if self.proc is not None and self.proc.returncode is None:
            _signal_group(self.proc.pid, signal.SIGTERM)

    def wait_stopped(self, timeout: float = 15) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            pgid = proc.pid  # start_new_session: the group id is the leader's pid
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(pgid, signal.SIGKILL)
                proc.wait(5)
            # Workers whose master is gone, if any: never leave them behind.
            deadline = time.monotonic() + 5
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _group_alive(pgid):
                _signal_group(pgid, signal.SIGKILL)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- conveniences --------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    def discovery(self) -> dict:
        return requests.get(self.url("/.well-known/openid-configuration"), timeout=5).json()

    def sms_code(self, phone: str, purpose: str, *, after: float = 0,
                 timeout: float = 10) -> str:
        """The newest code for ``purpose`` that the dev SMS gateway wrote to the outbox
        for ``phone`` at ``after`` (a Unix time) or later, waited for up to ``timeout``."""
        outbox = self.instance_path / "sms_outbox.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if outbox.exists():
                for line in reversed(outbox.read_text(encoding="utf-8").splitlines()):
                    msg = json.loads(line)
                    if msg["phone"] == phone and msg["purpose"] == purpose and msg["at"] >= after:
                        return msg["code"]
            time.sleep(0.1)
        raise AssertionError(f"no {purpose} SMS in the outbox:\n{self.log_tail(20)}")


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse_json(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):  # tolerate chatter before the JSON line
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


@contextlib.contextmanager
def running(*idps: LiveIdP, serve_args: tuple[str, ...] = ()) -> Iterator[tuple[LiveIdP, ...]]:
    """Start the given providers and stop all of them afterwards, whatever happens."""
    started: list[LiveIdP] = []
    try:
        for idp in idps:
            idp.start(*serve_args)
            started.append(idp)
        yield idps
    finally:
        for idp in started:  # all at once: each takes a few seconds to wind down
            idp.terminate()
        for idp in started:
            idp.wait_stopped()


@contextlib.contextmanager
def provider(tmp_path_factory, name: str, *, span: int = 1, host: str = "127.0.0.1",
             env: dict[str, str] | None = None, cls: type[LiveIdP] = LiveIdP,
             ) -> Iterator[LiveIdP]:
    """A provider with its own fresh backend, not started yet (set it up with its CLI,
    then start it with ``running``): issuer http://HOST:PORT, and the ports after PORT,
    ``span`` in all, free for the test's own servers."""
    with backend_env() as shared:
        port = free_port(span)
        yield cls(port=port, issuer=f"http://{host}:{port}", url_host=host,
                  shared_env={**shared, **(env or {})},
                  instance_path=tmp_path_factory.mktemp(name))


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for one test module (see browser.py)."""
    from .browser import chromium  # Playwright only where a test drives a browser

    with chromium() as b:
        yield b


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with tests/e2e/node_modules installed if missing."""
    from .node_script import ensure_node

    return ensure_node()


@pytest.fixture(scope="module")
def live_idp(tmp_path_factory) -> Iterator[LiveIdP]:
    """A provider on PostgreSQL + Redis with an issuer of http://127.0.0.1:PORT."""
    with provider(tmp_path_factory, "live-idp") as idp:
        idp.run_cli("init")
        with running(idp):
            yield idp


# The CAS tests' one provider (python-cas, mod_auth_cas, the CAS demo site), shared by
# their modules; at the end, since it is built from the helpers above.
from .cas_provider import cas_setup  # noqa: E402,F401
