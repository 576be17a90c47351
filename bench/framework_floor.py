"""What the web stack alone costs per request: a bare Flask endpoint that reads a form and
answers a small JSON document, under the HTTP servers oidc_bench.py can run ours on.

    .venv/bin/python bench/framework_floor.py [--requests 8000] [--servers gthread,granian]

It is the floor under every figure of oidc_bench.py: no endpoint of ours can cost less
server CPU per operation than this, whatever the provider does. Compare it with
node-oidc-provider's whole client_credentials grant (bench/README.md, "Hot paths").
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

APP = '''
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/token")
def token():
    return jsonify(access_token="x" * 43, token_type="Bearer", expires_in=3600,
                   scope=request.form.get("scope", ""))
'''

BODY = "grant_type=client_credentials&scope=a"
HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(server: str, port: int, workers: int, threads: int) -> list[str]:
    bindir = Path(sys.executable).parent
    if server == "gthread":
        return [str(bindir / "gunicorn"), "--log-level", "warning", "-w", str(workers),
                "--threads", str(threads), "-k", "gthread", "-b", f"127.0.0.1:{port}",
                "app:app"]
    if server == "granian":
        return [str(bindir / "granian"), "--interface", "wsgi", "--workers", str(workers),
                "--blocking-threads", str(threads), "--host", "127.0.0.1", "--port",
                str(port), "--log-level", "warning", "app:app"]
    raise SystemExit(f"unknown server {server!r} (gthread or granian)")


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            _one(http.client.HTTPConnection("127.0.0.1", port, timeout=2))
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not answer")


def _one(conn: http.client.HTTPConnection) -> None:
    conn.request("POST", "/token", body=BODY, headers=HEADERS)
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}")


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(server: str, requests: int, clients: int, workers: int, threads: int) -> dict:
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "app.py").write_text(APP)
        proc = subprocess.Popen(_command(server, port, workers, threads), cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_ready(port, proc)
            procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
            errors: list[str] = []

            def client(n: int) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                for _ in range(n):
                    try:
                        _one(conn)
                    except (OSError, RuntimeError, http.client.HTTPException) as exc:
                        errors.append(str(exc))
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            client(min(200, requests))  # warm-up: imports, first connections
            per = max(1, requests // clients)
            before, started = _cpu(procs), time.monotonic()
            pool = [threading.Thread(target=client, args=(per,)) for _ in range(clients)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            took, spent = time.monotonic() - started, _cpu(procs) - before
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    done = per * clients - len(errors)
    return {"server": server, "requests": done, "errors": len(errors),
            "per_second": done / took if took else 0.0,
            "cpu_ms_per_op": spent / done * 1000 if done else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=8000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--servers", default="gthread,granian")
    ap.add_argument("--smoke", action="store_true", help="a few hundred requests")
    args = ap.parse_args(argv)
    if args.smoke:
        args.requests = 400
    servers = [s for s in args.servers.split(",") if s]
    bindir = os.path.dirname(sys.executable)
    if "granian" in servers and shutil.which("granian", path=bindir) is None:
        print("granian not installed (pip install granian): measuring gthread only")
        servers.remove("granian")
    load = os.getloadavg()[0]
    print(f"machine load average {load:.1f} on {os.cpu_count()} cores")
    failed = False
    for server in servers:
        r = measure(server, args.requests, args.clients, args.workers, args.threads)
        failed |= r["errors"] > 0
        print(f"bare Flask, {server:8s} {args.workers}x{args.threads}: {r['per_second']:7.0f} "
              f"req/s, server CPU {r['cpu_ms_per_op']:.3f} ms/op ({r['requests']} requests, "
              f"{r['errors']} errors)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
