#!/usr/bin/env python3
"""Throughput, latency and CPU per operation of our provider against node-oidc-provider.

    .venv/bin/python bench/oidc_bench.py [--concurrency 16] [--seconds 10] [--open-loop] ...
    .venv/bin/python bench/oidc_bench.py --smoke        # seconds per scenario: does it work?

Starts ours (``idp serve``: gunicorn on PostgreSQL + Redis, fresh database and key
prefix) and node-oidc-provider (bench/node/provider.mjs, in-memory and/or Redis
adapter), each with the same client and ``--people`` citizens, then for each scenario
drives each server in turn with the same closed-loop load (bench/node/load.mjs, undici;
each virtual client signs in only its own people): client_credentials, code (the
authorization-code exchange alone, codes minted beforehand), refresh (rotating),
userinfo, introspection, discovery, jwks, and complete sign-ins with PKCE. With
``--open-loop`` the hot scenarios are run again at a fixed offered rate (half the
closed-loop peak by default) for p50/p99. CPU per operation counts the server and its
share of PostgreSQL/Redis. Also measures what Argon2id alone costs at the server's
parameters. Prints tables and writes JSON to bench/results/. A benchmark: its timings
are never asserted; tests/bench only checks that a ``--smoke`` run has no errors.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import _hashcost  # noqa: E402
import _procstats  # noqa: E402
import _pyspy  # noqa: E402
from _servers import (  # noqa: E402
    NODE_DIR,
    Ours,
    Server,
    Theirs,
    ensure_node_modules,
    node_package_version,
    node_version,
)

SCENARIOS = {
    "client_credentials": "client_credentials grants/s",
    "code": "code exchanges/s",
    "refresh": "refresh grants/s",
    "userinfo": "userinfo/s",
    "introspection": "introspection/s",
    "discovery": "discovery/s",
    "jwks": "jwks/s",
    "login": "auth-code logins/s",
}
# Scenarios measured again in open loop (--open-loop): the hot endpoints, not logins.
OPEN_LOOP = ["client_credentials", "code", "refresh", "userinfo", "introspection",
             "discovery", "jwks"]
RESULTS = BENCH / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cpus = os.cpu_count() or 2
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--concurrency", type=int, default=16, help="virtual clients, each closed-loop")
    p.add_argument("--seconds", type=float, default=10.0, help="measured window per metric")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured lead-in per metric")
    p.add_argument("--login-seconds", type=float, default=20.0,
                   help="measured window for logins, which take seconds each under load: a "
                        "short window holds few of them and the in-flight ones skew it")
    p.add_argument("--login-warmup", type=float, default=5.0,
                   help="lead-in for logins (at least one full sign-in per client)")
    p.add_argument("--workers", type=int, default=cpus,
                   help="gunicorn workers for ours (one per core)")
    p.add_argument("--threads", type=int, default=8, help="gthread threads per worker")
    p.add_argument("--theirs", choices=["memory", "redis", "both", "none"], default="both",
                   help="node-oidc-provider adapter(s) to compare with")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated subset of " + ",".join(SCENARIOS))
    p.add_argument("--tokens", type=int, default=4,
                   help="access tokens (from real sign-ins) shared by userinfo/introspection")
    p.add_argument("--hash-seconds", type=float, default=3.0,
                   help="duration of each Argon2id rate measurement (0 skips)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat every (metric, server) phase; the best round is reported "
                        "(the machine is shared: the best is the least disturbed)")
    p.add_argument("--quiet-wait", type=float, default=3.0,
                   help="before each phase, wait up to this long for the machine to be idle")
    p.add_argument("--profile", action="store_true",
                   help="py-spy every gunicorn worker during our phases (costs CPU; marked)")
    p.add_argument("--profile-mode", choices=["gil", "wall"], default="gil",
                   help="py-spy: 'gil' = Python CPU time, 'wall' = all busy threads incl. I/O")
    p.add_argument("--people", type=int, default=0,
                   help="citizens seeded on each server; each virtual client signs in only "
                        "its own (0: 2 per client)")
    p.add_argument("--codes", type=int, default=3000,
                   help="authorization codes minted (untimed) before the code scenario; "
                        "its window ends early if they run out (the window is reported)")
    p.add_argument("--mint-seconds", type=float, default=20.0,
                   help="longest time spent minting codes (they live 60 s)")
    p.add_argument("--open-loop", action="store_true",
                   help="after each closed-loop hot scenario, offer a fixed rate (a fraction "
                        "of the closed-loop peak just measured) and report p50/p99")
    p.add_argument("--open-loop-scenarios", default=",".join(OPEN_LOOP),
                   help="which scenarios --open-loop measures")
    p.add_argument("--open-loop-fraction", type=float, default=0.5,
                   help="offered rate as a fraction of the server's closed-loop throughput")
    p.add_argument("--open-loop-rate", type=float, default=0.0,
                   help="fixed offered rate in ops/s for every server (overrides the fraction)")
    p.add_argument("--worker-class", choices=["gthread", "sync", "granian"], default="gthread",
                   help="gunicorn worker class for ours (sync: --threads is ignored); "
                        "granian: granian's WSGI server instead of gunicorn (evaluation)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny run of every scenario (seconds each) to check that the bench "
                        "works; figures meaningless")
    p.add_argument("--keep", action="store_true", help="keep the database and Redis keys")
    p.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = p.parse_args(argv)
    if args.smoke:
        args.concurrency = min(args.concurrency, 4)
        args.seconds, args.warmup = 0.4, 0.1
        args.login_seconds, args.login_warmup = 0.6, 0.2
        args.hash_seconds, args.quiet_wait, args.rounds = 0.0, 0.0, 1
        args.codes, args.mint_seconds = 120, 5.0
        args.open_loop_rate = args.open_loop_rate or 20.0
        # Cheap password hashing for both servers: a smoke run checks that every step
        # works, and the setup sign-ins would otherwise take most of its time.
        os.environ.setdefault("IDP_ARGON2_TIME_COST", "1")
        os.environ.setdefault("IDP_ARGON2_MEMORY_COST", "8192")
    if args.people <= 0:
        args.people = 2 * args.concurrency
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    args.open_loop_scenarios = [s.strip() for s in args.open_loop_scenarios.split(",")
                                if s.strip()]
    if set(args.open_loop_scenarios) - set(OPEN_LOOP):
        p.error("--open-loop-scenarios: choose from " + ",".join(OPEN_LOOP))
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


# --- one phase: one server, one scenario -------------------------------------------------

def window(args: argparse.Namespace, scenario: str) -> tuple[float, float]:
    """(measured seconds, warm-up seconds) for a scenario."""
    if scenario == "login":
        return args.login_seconds, args.login_warmup
    return args.seconds, args.warmup


def run_phase(server: Server, scenario: str, args: argparse.Namespace, workdir: Path,
              pg_database: str | None, rate: float = 0.0) -> dict:
    quiet = _procstats.quiet_machine(args.quiet_wait)
    seconds, warmup = window(args, scenario)
    cfg = {**server.load_config(), "scenario": scenario, "concurrency": args.concurrency,
           "seconds": seconds, "warmup": warmup, "tokens": args.tokens,
           "codes": args.codes, "mintSeconds": args.mint_seconds, "rate": rate}
    snaps: dict[str, _procstats.Snapshot] = {}
    profiling: list = []
    stderr_lines: list[str] = []

    with _procstats.RssSampler(server.worker_pids) as rss:
        proc = subprocess.Popen(["node", "load.mjs", json.dumps(cfg)], cwd=NODE_DIR,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def watch_stderr() -> None:
            for line in proc.stderr:
                line = line.rstrip("\n")
                if line == "MARK start":
                    snaps["start"] = _procstats.Snapshot(server.all_pids(), proc.pid, pg_database)
                    if args.profile and isinstance(server, Ours):
                        profiling.extend(_pyspy.start(server.worker_pids(), seconds,
                                                      workdir, f"{server.label}-{scenario}",
                                                      args.profile_mode))
                elif line == "MARK end":
                    snaps["end"] = _procstats.Snapshot(server.all_pids(), proc.pid, pg_database)
                else:
                    stderr_lines.append(line)

        watcher = threading.Thread(target=watch_stderr, daemon=True)
        watcher.start()
        # A phase that hangs is killed: setup logins + warm-up + window + slack.
        killer = threading.Timer(warmup + seconds + args.mint_seconds + 180, proc.kill)
        killer.start()
        try:
            stdout = proc.stdout.read()
            proc.wait()
        finally:
            killer.cancel()
        watcher.join(10)

    if proc.returncode != 0 or not stdout.strip():
        return {"scenario": scenario, "failed": True, "returncode": proc.returncode,
                "stderr": "\n".join(stderr_lines[-20:]), "quiet": quiet}
    result = json.loads(stdout.strip().splitlines()[-1])
    result["quiet"] = quiet
    result["peak_rss_mb"] = round(rss.peak / 2**20, 1)
    if "start" in snaps and "end" in snaps:
        cpu = _procstats.Snapshot.delta(snaps["start"], snaps["end"])
        ops = max(1, result["ok"])
        wall = max(1e-9, cpu["wall_s"])
        cpu["server_cpu_ms_per_op"] = round(cpu["server_cpu_s"] * 1000 / ops, 2)
        cpu["backing_cpu_ms_per_op"] = round(cpu["backing_cpu_s"] * 1000 / ops, 2)
        cpu["total_cpu_ms_per_op"] = round(
            (cpu["server_cpu_s"] + cpu["backing_cpu_s"]) * 1000 / ops, 2)
        for key in ("server", "client", "backing", "other"):
            cpu[f"{key}_cores"] = round(cpu[f"{key}_cpu_s"] / wall, 2)
        result["cpu"] = cpu
    if profiling:
        files = _pyspy.finish(profiling)
        result["profile"] = _pyspy.summarize(files)
        result["profile_files"] = [str(f) for f in files]
    if stderr_lines:
        result["stderr"] = "\n".join(stderr_lines[-10:])
    return result


def best(runs: list[dict]) -> dict:
    ok = [r for r in runs if not r.get("failed")]
    if not ok:
        return runs[-1]
    chosen = dict(max(ok, key=lambda r: r["throughput"]))
    chosen["rounds_throughput"] = [r.get("throughput") for r in runs]
    return chosen


# --- report -------------------------------------------------------------------------

def fmt_rate(r: dict | None) -> str:
    if not r or r.get("failed"):
        return "FAILED"
    return f"{r['throughput']:.1f}"


def fmt_lat(r: dict | None) -> str:
    if not r or r.get("failed") or not r.get("latency_ms"):
        return "-"
    lat = r["latency_ms"]
    return f"{lat['p50']:.0f}/{lat['p99']:.0f}" if lat["p50"] >= 100 else (
        f"{lat['p50']:.1f}/{lat['p99']:.1f}")


def ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or a.get("failed") or b.get("failed") or not b["throughput"]:
        return "-"
    return f"{a['throughput'] / b['throughput']:.2f}"


def errs(r: dict | None) -> str:
    if not r or r.get("failed"):
        return "?"
    return str(r["errors"])


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [line.format(*header), line.format(*["-" * w for w in widths])]
    out.extend(line.format(*row) for row in rows)
    return "\n".join(out)


def others(r: dict | None) -> str:
    c = (r or {}).get("cpu") or {}
    return f"{c['other_cores']:.2f}" if "other_cores" in c else "?"


def cpu_per_op(r: dict | None, key: str = "server_cpu_ms_per_op") -> str:
    c = (r or {}).get("cpu") or {}
    v = c.get(key)
    return "?" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.2f}")


def cpu_ratio(a: dict | None, b: dict | None) -> str:
    """theirs/ours total CPU per operation (server + PostgreSQL/Redis): 1 = as cheap."""
    x = ((a or {}).get("cpu") or {}).get("total_cpu_ms_per_op")
    y = ((b or {}).get("cpu") or {}).get("total_cpu_ms_per_op")
    return f"{y / x:.2f}" if x and y else "-"


def comparison_table(results: dict, scenarios: list[str], theirs: str) -> str:
    header = ["metric", "ours", theirs, "ours/theirs", "ours p50/p99 ms",
              "theirs p50/p99 ms", "server CPU ms/op o/t", "+PG/Redis ms/op o/t",
              "CPU t/o", "errors o/t", "others' cores o/t"]
    rows = []
    for s in scenarios:
        o, t = results["ours"].get(s), results[theirs].get(s)
        rows.append([SCENARIOS[s], fmt_rate(o), fmt_rate(t), ratio(o, t), fmt_lat(o), fmt_lat(t),
                     f"{cpu_per_op(o)}/{cpu_per_op(t)}",
                     f"{cpu_per_op(o, 'total_cpu_ms_per_op')}/"
                     f"{cpu_per_op(t, 'total_cpu_ms_per_op')}",
                     cpu_ratio(o, t), f"{errs(o)}/{errs(t)}", f"{others(o)}/{others(t)}"])
    return table(rows, header)


def resource_table(results: dict, scenarios: list[str]) -> str:
    header = ["server", "metric", "server CPU ms/op", "PG+Redis CPU ms/op", "server cores",
              "loadgen cores", "other procs cores", "peak RSS MB"]
    rows = []
    for label, per in results.items():
        for s in scenarios:
            r = per.get(s)
            if not r or r.get("failed"):
                continue
            c = r.get("cpu", {})
            rows.append([label, s, str(c.get("server_cpu_ms_per_op", "-")),
                         str(c.get("backing_cpu_ms_per_op", "-")),
                         str(c.get("server_cores", "-")), str(c.get("client_cores", "-")),
                         str(c.get("other_cores", "-")), f"{r['peak_rss_mb']:.0f}"])
    return table(rows, header)


def open_loop_table(open_results: dict, scenarios: list[str]) -> str:
    header = ["server", "metric", "offered/s", "achieved/s", "p50 ms", "p99 ms", "max ms",
              "errors", "not sent", "CPU ms/op (+PG/Redis)"]
    rows = []
    for label, per in open_results.items():
        for s in scenarios:
            r = per.get(s)
            if not r:
                continue
            if r.get("failed"):
                rows.append([label, s, "-", "FAILED", "-", "-", "-", "?", "?", "-"])
                continue
            lat = r.get("latency_ms") or {}
            rows.append([label, s, f"{r.get('offered_rate', 0):.0f}", f"{r['throughput']:.1f}",
                         f"{lat.get('p50', 0):.1f}", f"{lat.get('p99', 0):.1f}",
                         f"{lat.get('max', 0):.1f}", str(r["errors"]), str(r.get("late", 0)),
                         cpu_per_op(r, "total_cpu_ms_per_op")])
    return table(rows, header) if rows else ""


def login_steps_table(results: dict) -> str:
    header = ["server", "authorize", "login page", "login POST", "resume", "token"]
    rows = []
    for label, per in results.items():
        steps = (per.get("login") or {}).get("steps_ms") or {}
        if not steps:
            continue
        rows.append([label] + [
            f"{steps[k]['p50']:.0f}/{steps[k]['p99']:.0f}" if steps.get(k) else "-"
            for k in ("authorize", "login_page", "login_post", "resume", "token")])
    return table(rows, header) if rows else ""


def hash_summary(hashcost: dict, results: dict, workers: int) -> list[str]:
    if not hashcost:
        return []
    p = hashcost["params"]
    py = hashcost["python"]
    lines = [
        f"Argon2id t={p['time_cost']} m={p['memory_cost']} KiB p={p['parallelism']} "
        f"(config/default.py ARGON2_*), servers not yet started; other processes used "
        f"{hashcost.get('others_cores', '?')} cores meanwhile:",
        f"  python {py['library']}: {py['one_core']['per_second']}/s on one core "
        f"({py['one_core']['cpu_ms_per_verify']} CPU-ms each); "
        f"{py['all_workers']['per_second']}/s in {workers} processes",
    ]
    node = hashcost.get("node", {})
    node_best = None
    if node.get("results"):
        parts = []
        for r in node["results"]:
            parts.append(f"{r['per_second']}/s with {r['inflight']} in flight")
            node_best = max(node_best or 0.0, r["per_second"])
        lines.append(f"  node {node['library'].split(' {')[0]} "
                     f"(libuv pool of {node['uv_threadpool_size']}): " + ", ".join(parts))
    cores = os.cpu_count() or 2
    ceiling = cores * 1000 / py["one_core"]["cpu_ms_per_verify"]
    lines.append(f"  CPU ceiling: {cores} idle cores / {py['one_core']['cpu_ms_per_verify']} "
                 f"CPU-ms = {ceiling:.1f} verifications/s at most, whatever the server "
                 f"(rates above are lower when other processes were busy)")
    ours_login = (results.get("ours") or {}).get("login")
    cap = py["all_workers"]["per_second"]
    if ours_login and not ours_login.get("failed") and cap:
        share = ""
        c = ours_login.get("cpu")
        if c and c.get("server_cpu_ms_per_op"):
            pct = 100 * py["one_core"]["cpu_ms_per_verify"] / c["server_cpu_ms_per_op"]
            share = (f"; Argon2 is {pct:.0f}% of the server's "
                     f"{c['server_cpu_ms_per_op']:.0f} CPU-ms per login")
        lines.append(f"  ours: {ours_login['throughput']:.1f} logins/s = "
                     f"{100 * ours_login['throughput'] / cap:.0f}% of the {cap}/s the hash alone "
                     f"allows in {workers} processes{share}")
    for label, per in results.items():
        if not label.startswith("theirs") or not node_best:
            continue
        r = per.get("login")
        if r and not r.get("failed"):
            lines.append(f"  {label}: {r['throughput']:.1f} logins/s = "
                         f"{100 * r['throughput'] / node_best:.0f}% of the {node_best}/s the "
                         f"npm argon2 alone reaches")
    return lines


def environment(args: argparse.Namespace, servers: list[Server]) -> dict:
    import importlib.metadata as md

    import psutil

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "?"

    cpu_model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def cmd(*c: str) -> str:
        try:
            return subprocess.run(c, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return "?"

    return {
        "when": datetime.now().isoformat(timespec="seconds"),
        "cpu": f"{cpu_model}, {psutil.cpu_count()} logical cores",
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "node": node_version(),
        "packages": {
            "authlib": version("Authlib"), "flask": version("Flask"),
            "gunicorn": version("gunicorn"), "joserfc": version("joserfc"),
            "argon2-cffi": version("argon2-cffi"), "sqlalchemy": version("SQLAlchemy"),
            "psycopg": version("psycopg"), "redis-py": version("redis"),
            "oidc-provider": node_package_version("oidc-provider"),
            "npm argon2": node_package_version("argon2"),
            "undici": node_package_version("undici"),
            "ioredis": node_package_version("ioredis"),
        },
        "postgresql": cmd("psql", "--version"),
        "redis": cmd("redis-server", "--version").split(" sha=")[0],
        "load": (f"closed loop, {args.concurrency} virtual clients, {args.warmup:g} s warm-up + "
                 f"{args.seconds:g} s measured per metric (logins {args.login_warmup:g} + "
                 f"{args.login_seconds:g} s), best of {args.rounds} round(s), metrics "
                 f"interleaved across servers; one Node process (undici) on the same cores "
                 f"as the servers"),
        "servers": {s.label: s.notes for s in servers},
    }


def environment_notes(env: dict, args: argparse.Namespace) -> list[str]:
    notes = [
        f"machine: {env['cpu']}, {env['memory_gb']} GiB; load average at start "
        f"{env['load_average_at_start']}",
        f"python {env['python']}, node {env['node']}; " + ", ".join(
            f"{k} {v}" for k, v in env["packages"].items()),
        f"{env['postgresql']}; {env['redis']}",
        f"load: {env['load']}. The load generator competes with the servers for the 2 cores "
        "(its share is the 'loadgen cores' column); PostgreSQL and Redis too.",
    ]
    for label, items in env["servers"].items():
        notes.append(f"{label}: " + "; ".join(items))
    notes.append(
        "fairness: ours keeps codes/sessions in Redis and clients, people, refresh tokens in "
        "PostgreSQL; theirs-memory keeps everything in process memory (an LRU of 1000 "
        "entries), theirs-redis keeps its tokens/sessions/interactions in Redis; "
        "both theirs keep the account in memory.")
    notes.append(
        "tokens: ours issues JWT access tokens (ES256, typ at+jwt) for every grant. Theirs "
        "issues a JWT (ES256) for client_credentials (resource indicator) and an opaque "
        "access token from the code flow, because node-oidc-provider's userinfo refuses "
        "tokens with an audience; so theirs' userinfo and introspection are store lookups, "
        "ours verify an ES256 signature (plus a Redis revocation check and a PostgreSQL "
        "person read at userinfo). Both issue ID token (ES256) + refresh token per login.")
    notes.append(
        "login = GET authorize -> 302 -> GET login form -> POST credentials (Argon2id "
        "verify) -> 302 -> GET authorize (resume) -> 302 with code -> POST token (code + "
        "PKCE verifier); a fresh cookie jar each time. Latency is for the whole sequence.")
    if args.profile:
        notes.append("PROFILED RUN: py-spy sampled our workers during our phases; "
                     "our numbers are depressed by its CPU use.")
    return notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / f"run-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    out_path = args.out or RESULTS / f"oidc-bench-{stamp}.json"

    ensure_node_modules()
    hashcost: dict = {}
    if args.hash_seconds > 0:
        print(f"measuring Argon2id alone ({args.hash_seconds:g} s per setting) ...", flush=True)
        _procstats.quiet_machine(args.quiet_wait)
        before = _procstats.Snapshot([], None)
        hashcost = _hashcost.measure(args.workers, args.hash_seconds)
        after = _procstats.Snapshot([], None)
        busy = _procstats.Snapshot.delta(before, after)
        # Everything busy meanwhile that was not the hash processes themselves (their CPU
        # is in the results) ran on other sessions' behalf.
        hash_cpu = sum(r["cpu_ms_per_verify"] * r["verifies"] / 1000 for r in (
            hashcost["python"]["one_core"], hashcost["python"]["all_workers"],
            *hashcost["node"].get("results", [])))
        hashcost["others_cores"] = round(
            max(0.0, busy["machine_busy_s"] - hash_cpu) / max(1e-9, busy["wall_s"]), 2)
    params = _hashcost.server_argon2_params()

    servers: list[Server] = [Ours(args.workers, args.threads, workdir, args.people,
                                  args.worker_class)]
    if args.theirs in ("memory", "both"):
        servers.append(Theirs("memory", workdir, params, args.people))
    if args.theirs in ("redis", "both"):
        servers.append(Theirs("redis", workdir, params, args.people))

    results: dict[str, dict] = {s.label: {} for s in servers}
    open_results: dict[str, dict] = {s.label: {} for s in servers}
    rounds: dict[str, dict[str, list[dict]]] = {s.label: {} for s in servers}
    started: list[Server] = []
    try:
        for server in servers:
            print(f"starting {server.label} ...", flush=True)
            server.start()
            started.append(server)
            print(f"  {server.label} ready at {server.url}", flush=True)
        env = environment(args, servers)
        for scenario in args.scenarios:
            for rnd in range(1, args.rounds + 1):
                for server in servers:
                    print(f"{scenario:<18} {server.label:<14} round {rnd} ", end="", flush=True)
                    pg = server.db_name if isinstance(server, Ours) else None
                    r = run_phase(server, scenario, args, workdir, pg)
                    r["round"] = rnd
                    rounds[server.label].setdefault(scenario, []).append(r)
                    if r.get("failed"):
                        print(f"FAILED: {r.get('stderr', '')[-400:]}", flush=True)
                    else:
                        p50 = r["latency_ms"]["p50"] if r["latency_ms"] else "-"
                        print(f"{r['throughput']:8.1f}/s  p50 {p50} ms  errors {r['errors']}  "
                              f"others' cores {others(r)}", flush=True)
            for server in servers:
                results[server.label][scenario] = best(rounds[server.label][scenario])
            if args.open_loop and scenario in args.open_loop_scenarios:
                for server in servers:
                    closed = results[server.label][scenario]
                    rate = args.open_loop_rate or (
                        0.0 if closed.get("failed") else
                        round(args.open_loop_fraction * closed["throughput"], 1))
                    if rate <= 0:
                        continue
                    print(f"{scenario:<18} {server.label:<14} open loop {rate:g}/s ",
                          end="", flush=True)
                    pg = server.db_name if isinstance(server, Ours) else None
                    r = run_phase(server, scenario, args, workdir, pg, rate)
                    open_results[server.label][scenario] = r
                    if r.get("failed"):
                        print(f"FAILED: {r.get('stderr', '')[-400:]}", flush=True)
                    else:
                        lat = r["latency_ms"] or {}
                        print(f"{r['throughput']:8.1f}/s  p50 {lat.get('p50', '-')} ms  "
                              f"p99 {lat.get('p99', '-')} ms  errors {r['errors']}",
                              flush=True)
        for server in servers:
            server.notes.append(f"log: {server.log}")
    finally:
        for server in reversed(started):
            server.stop(keep=args.keep)

    theirs_labels = [s.label for s in servers if s.label != "ours"]
    report = [
        "",
        f"=== OIDC provider benchmark: ours vs node-oidc-provider "
        f"({args.concurrency} clients, {args.seconds:g} s per metric, "
        f"{args.login_seconds:g} s for logins) ===",
    ]
    for label in theirs_labels:
        report += ["", f"-- ours vs {label} (throughput in ops/s; latency p50/p99 in ms) --",
                   comparison_table(results, args.scenarios, label)]
    if "login" in args.scenarios:
        steps = login_steps_table(results)
        if steps:
            report += ["", "-- login steps, p50/p99 ms --", steps]
    ol = open_loop_table(open_results, args.scenarios)
    if ol:
        report += ["", "-- open loop: fixed offered rate, latency from when each operation "
                       "was due --", ol]
    report += ["", "-- resources during the measured window --", resource_table(results,
                                                                             args.scenarios)]
    hs = hash_summary(hashcost, results, args.workers)
    if hs:
        report += ["", "-- password hash --", *hs]
    errors = [(label, s, r.get("error_samples")) for label, per in results.items()
              for s, r in per.items() if r.get("error_samples")]
    if errors:
        report += ["", "-- error samples --"]
        report += [f"  {label} {s}: {json.dumps(e, ensure_ascii=False)}" for label, s, e in errors]
    report += ["", "-- environment --", *[f"  {n}" for n in environment_notes(env, args)]]
    profiles = [(label, s, r["profile"]) for label, per in results.items()
                for s, r in per.items() if r.get("profile")]
    for label, s, prof in profiles:
        report += ["", _pyspy.format_summary(f"{label} {s}", prof, args.profile_mode)]
    text = "\n".join(report)
    print(text)

    doc = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "environment": env, "hash_cost": hashcost, "results": results,
           "open_loop": open_results,
           "all_rounds": rounds, "report": text}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, ensure_ascii=False, indent=2))
    (workdir / "report.txt").write_text(text + "\n")
    print(f"\nJSON: {out_path}\nlogs: {workdir}")
    failed = any(r.get("failed") or r.get("errors") for group in (results, open_results)
                 for per in group.values() for r in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
