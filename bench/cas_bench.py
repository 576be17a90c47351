"""CAS round trips against ``idp serve``: a signed-in browser asks ``/cas/login`` for a
service ticket (SSO, no password) and the service validates it at
``/cas/p3/serviceValidate`` — the two requests every page of a CAS site costs when its
own session has lapsed.

    .venv/bin/python bench/cas_bench.py [--pairs 400] [--concurrency 8]

Starts its own provider on the embedded default (SQLite + store in the same database,
a temporary instance directory) unless DATABASE_URL / REDIS_URL are set in the
environment, which it passes on. Not part of the test run."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

CITIZEN_ID, PASSWORD = "11010519491231002X", "Bench-Password-2026"


def idp(env, *args):
    return subprocess.run([str(Path(sys.executable).parent / "idp"), *args, "--json"],
                          env=env, check=True, capture_output=True, text=True)


def signed_in(base: str, service: str) -> requests.Session:
    s = requests.Session()
    r = s.get(base + "/cas/login", params={"service": service}, allow_redirects=False)
    page = s.get(base + r.headers["Location"])
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    s.post(base + "/login", data={**fields, "username": CITIZEN_ID, "password": PASSWORD},
           allow_redirects=False)  # the SSO cookie is set here
    return s


def pair(base: str, service: str, s: requests.Session) -> float:
    t0 = time.perf_counter()
    r = s.get(base + "/cas/login", params={"service": service}, allow_redirects=False,
              timeout=30)
    ticket = parse_qs(urlsplit(r.headers["Location"]).query)["ticket"][0]
    v = requests.get(base + "/cas/p3/serviceValidate",
                     params={"service": service, "ticket": ticket, "format": "JSON"}, timeout=30)
    assert "authenticationSuccess" in v.json()["serviceResponse"], v.text
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    port = free_port()
    base, service = f"http://127.0.0.1:{port}", "https://bench.example.gov.cn/app/"
    with tempfile.TemporaryDirectory() as instance:
        env = {**os.environ, "IDP_INSTANCE_PATH": instance, "IDP_ISSUER": base}
        idp(env, "init")
        idp(env, "user", "add", "--id-number", CITIZEN_ID, "--name", "李四",
            "--password", PASSWORD)
        idp(env, "client", "add", "--client-id", "bench-cas", "--protocol", "cas",
            "--first-party", "--service", "https://bench.example.gov.cn/*")
        proc = subprocess.Popen([str(Path(sys.executable).parent / "idp"), "serve", "--port",
                                 str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            for _ in range(300):
                try:
                    requests.get(base + "/healthz", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            sessions = [signed_in(base, service) for _ in range(args.concurrency)]
            for s in sessions:  # warm up
                pair(base, service, s)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                times = list(pool.map(lambda i: pair(base, service,
                                                     sessions[i % len(sessions)]),
                                      range(args.pairs)))
            wall = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    times.sort()
    backend = "PostgreSQL+Redis" if os.environ.get("DATABASE_URL") else "embedded SQLite"
    print(f"{backend}, {args.pairs} login+validate pairs, concurrency {args.concurrency}: "
          f"{args.pairs / wall:.0f} pairs/s, p50 {statistics.median(times) * 1000:.1f} ms, "
          f"p95 {times[int(len(times) * 0.95)] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
