"""Graceful shutdown of ``idp serve`` (gunicorn, gthread workers), through real processes.

* SIGTERM: no new connection is taken, but a request a worker already holds is
  finished and answered (``GRACEFUL_TIMEOUT`` in idp/cli/gunicorn_app.py), then the
  server exits 0.
* SIGHUP (the rolling restart gunicorn offers: new workers are started, then the old
  ones are told to stop gracefully): under a steady load of new connections, every
  worker is replaced and not one request fails.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time

import pytest
import requests

from tests.e2e.conftest import provider, running
from tests.resilience import cli
from tests.resilience.servers import wait_for


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """One provider (2 workers) for the module: the rolling restarts, then SIGTERM."""
    with provider(tmp_path_factory, "graceful") as live:
        cli.run(live.env, "init")
        with running(live, serve_args=("--workers", "2", "--threads", "4")):
            yield live


def workers(master: int) -> set[int]:
    path = f"/proc/{master}/task/{master}/children"
    with open(path) as fh:
        return {int(p) for p in fh.read().split()}


class Load:
    """Threads sending requests on new connections (``Connection: close``) and keeping
    every outcome: a status, or the exception a client saw."""

    PATHS = ("/.well-known/openid-configuration", "/jwks", "/token")

    def __init__(self, base: str, threads: int = 4):
        self.base = base
        self.outcomes: list[int | str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def _run(self, n: int) -> None:
        i = n
        while not self._stop.is_set():
            path = self.PATHS[i % len(self.PATHS)]
            i += 1
            try:
                if path == "/token":  # a database read: the client is looked up
                    resp = requests.post(self.base + path, timeout=10,
                                         headers={"Connection": "close"},
                                         data={"grant_type": "client_credentials",
                                               "client_id": "nobody", "client_secret": "x"})
                else:
                    resp = requests.get(self.base + path, timeout=10,
                                        headers={"Connection": "close"})
                self.outcomes.append(resp.status_code)
            except requests.RequestException as exc:
                self.outcomes.append(type(exc).__name__)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def failed(self) -> list:
        # /token answers the unknown client with a 4xx; a failure is a 5xx or a
        # request the client could not complete (reset, refused, timed out).
        return [o for o in self.outcomes if not isinstance(o, int) or o >= 500]


def test_rolling_restart_under_load_fails_no_request(idp):
    master = idp.proc.pid
    wait_for("two workers", lambda: len(workers(master)) == 2, timeout=60)
    with Load(idp.base_url) as load:
        for _ in range(2):
            old = workers(master)
            wait_for("requests flowing",
                     lambda n=len(load.outcomes): len(load.outcomes) > n + 20, timeout=60)
            started = time.monotonic()
            os.kill(master, signal.SIGHUP)
            wait_for("every worker replaced",
                     lambda o=old: len(workers(master)) == 2 and not workers(master) & o,
                     timeout=120)
            print(f"\nrolling restart: workers replaced in "
                  f"{time.monotonic() - started:.2f}s")
            mark = len(load.outcomes)
            wait_for("requests served by the new workers",
                     lambda m=mark: len(load.outcomes) > m + 20, timeout=60)
    print(f"rolling restarts under load: {len(load.outcomes)} requests, "
          f"{len(load.failed())} failed")
    assert len(load.outcomes) > 80
    assert load.failed() == []


def test_sigterm_finishes_the_request_in_flight(idp):
    """Last in the module: it stops the provider."""
    body = b"grant_type=client_credentials&client_id=nobody&client_secret=x"
    conn = http.client.HTTPConnection("127.0.0.1", idp.port, timeout=20)
    # A first answer on this keep-alive connection: a worker holds it from now on.
    conn.request("GET", "/jwks")
    first = conn.getresponse()
    first.read()
    assert first.status == 200
    # The next request is half sent when SIGTERM comes.
    conn.putrequest("POST", "/token")
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[:20])
    idp.terminate()
    # The whole group (master and worker) has the signal once the master says so.
    wait_for("SIGTERM handled", lambda: "Handling signal: term" in idp.log_tail(400))
    assert idp.proc.poll() is None  # still finishing the request
    conn.send(body[20:])
    resp = conn.getresponse()
    answer = resp.read()
    # The whole body reached the application: it judged the (unknown) client.
    assert b"invalid_client" in answer, (resp.status, answer)
    conn.close()
    assert idp.proc.wait(30) == 0
    idp.wait_stopped()
