"""What the password hash alone costs: Argon2id verifications per second with the
server's parameters (config/default.py ARGON2_*, or IDP_ARGON2_* from the
environment), in one process and in as many processes as gunicorn has workers;
and the same for the npm ``argon2`` package that the Node provider uses."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import time

from _servers import NODE_DIR


def server_argon2_params() -> dict[str, int]:
    from config import default

    params = {}
    for name in ("TIME_COST", "MEMORY_COST", "PARALLELISM"):
        env = os.environ.get("IDP_ARGON2_" + name)
        params[name.lower()] = int(env) if env else int(getattr(default, "ARGON2_" + name))
    return params


def _verify_loop(args: tuple[dict[str, int], float, float]) -> tuple[int, float, float]:
    """Verify until the deadline (shared by all processes); return (count, wall, cpu)."""
    params, seconds, start_at = args
    from argon2 import PasswordHasher

    ph = PasswordHasher(**params)
    stored = ph.hash("Correct-Horse-9")
    while time.time() < start_at:  # line the processes up
        time.sleep(0.005)
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    while time.perf_counter() - t0 < seconds:
        ph.verify(stored, "Correct-Horse-9")
        n += 1
    return n, time.perf_counter() - t0, time.process_time() - c0


def python_rate(params: dict[str, int], processes: int, seconds: float) -> dict:
    start_at = time.time() + 0.5
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        results = pool.map(_verify_loop, [(params, seconds, start_at)] * processes)
    count = sum(r[0] for r in results)
    wall = max(r[1] for r in results)
    cpu = sum(r[2] for r in results)
    return {
        "processes": processes,
        "verifies": count,
        "per_second": round(count / wall, 2),
        "cpu_ms_per_verify": round(cpu * 1000 / max(1, count), 1),
    }


def node_rate(params: dict[str, int], seconds: float, inflight: list[int]) -> dict:
    cfg = {"timeCost": params["time_cost"], "memoryCost": params["memory_cost"],
           "parallelism": params["parallelism"], "seconds": seconds, "inflight": inflight}
    out = subprocess.run(["node", "argon2_cost.mjs", json.dumps(cfg)], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=120 + 4 * seconds)
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-500:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(workers: int, seconds: float) -> dict:
    import argon2

    params = server_argon2_params()
    return {
        "params": params,
        "python": {
            "library": f"argon2-cffi {argon2.__version__}",
            "one_core": python_rate(params, 1, seconds),
            "all_workers": python_rate(params, workers, seconds),
        },
        "node": node_rate(params, seconds, [1, max(2, workers), 4]),
    }
