"""Every benchmark in bench/ still runs: each scenario once, briefly, with no errors.

These are smoke runs with tiny parameters (a second or less per scenario). Nothing here
looks at a timing or a rate: the benchmarks' figures are printed by the benchmarks and
read by people (bench/README.md); the suite only makes sure that the benchmarks can
still produce them (issue 15: the OIDC bench had silently stopped working).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import PG_ADMIN_URL, REDIS_URL, pg_available, redis_available

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
NODE_DIR = BENCH / "node"


def run(args: list[str], timeout: float = 240, env: dict | None = None
        ) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, **(env or {})})
    assert out.returncode == 0, f"{args[0]} exited {out.returncode}:\n{out.stdout[-3000:]}\n" \
                                f"{out.stderr[-3000:]}"
    return out


# The test command (scripts/test.sh) installs everything these need; a missing piece is a
# failure that names the fix, never a skip that would hide a bench nobody runs any more.

def needs(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(f"bench extras not installed ({', '.join(missing)}): "
                    "scripts/setup.sh --test")


def needs_services() -> None:
    problem = pg_available() or redis_available()
    if problem:
        pytest.fail(f"PostgreSQL/Redis not available (scripts/services.sh): {problem}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_oidc_bench_every_scenario_ours_and_node(tmp_path):
    needs("psutil")
    needs_services()
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("node and bench/node/node_modules needed: scripts/setup.sh --test")
    out_json = tmp_path / "oidc.json"
    run(["bench/oidc_bench.py", "--smoke", "--theirs", "redis", "--open-loop",
         "--open-loop-scenarios", "refresh", "--out", str(out_json)],
        env={"IDP_BENCH_PG_ADMIN": PG_ADMIN_URL.rsplit("/", 1)[0] + "/postgres",
             "IDP_BENCH_REDIS": REDIS_URL})
    doc = json.loads(out_json.read_text())
    scenarios = doc["args"]["scenarios"]
    assert set(scenarios) == {"client_credentials", "code", "refresh", "userinfo",
                              "introspection", "discovery", "jwks", "login"}
    for label in ("ours", "theirs-redis"):
        for scenario in scenarios:
            r = doc["results"][label][scenario]
            assert not r.get("failed"), (label, scenario, r.get("stderr"))
            assert r["errors"] == 0, (label, scenario, r.get("error_samples"))
            # Something was measured (logins may all still be in flight in a 1 s window).
            if scenario != "login":
                assert r["ok"] > 0, (label, scenario, r)
            assert r["cpu"]["total_cpu_ms_per_op"] >= r["cpu"]["server_cpu_ms_per_op"]
        for scenario in ("refresh",):
            r = doc["open_loop"][label][scenario]
            assert r["mode"] == "open" and r["errors"] == 0, (label, scenario, r)
            assert r["ok"] > 0 and r["latency_ms"]["p99"] >= r["latency_ms"]["p50"]


def test_hotpath_bench(tmp_path):
    needs_services()
    out_json = tmp_path / "hot.json"
    run(["bench/hotpath_bench.py", "--smoke", "--json", str(out_json)],
        env={"IDP_BENCH_PG_ADMIN": PG_ADMIN_URL.rsplit("/", 1)[0] + "/postgres",
             "IDP_BENCH_REDIS": REDIS_URL})
    results = json.loads(out_json.read_text())["results"]
    assert set(results) == {"client_credentials", "code", "refresh", "userinfo",
                            "introspection", "discovery", "jwks"}
    assert all(r["errors"] == 0 and r["ops"] > 0 for r in results.values())


def test_token_bench():
    out = run(["bench/token_bench.py", "--seconds", "0.05"])
    for alg in ("SM2SM3", "ES256", "RS256"):
        assert alg in out.stdout


def test_sm2_bench():
    out = run(["bench/sm2_bench.py", "--seconds", "1", "--rounds", "1", "--no-gmssl"])
    assert "idp.crypto.sm2" in out.stdout and "ours/openssl (in-process A/B)" in out.stdout


def test_cert_verify_bench():
    out = run(["bench/cert_verify_bench.py", "--n", "20"])
    assert "chain + CRLs" in out.stdout


def test_cas_bench():
    needs("requests")
    out = run(["bench/cas_bench.py", "--pairs", "6", "--concurrency", "2"])
    assert "pairs/s" in out.stdout


def test_qr_login_latency_bench():
    needs("playwright")
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("/usr/bin/chromium needed: scripts/setup.sh --test")
    port = free_port()
    out = run(["bench/qr_login_latency.py", "--rounds", "1", "--port", str(port)])
    assert "QR scan-to-login, 1 rounds: median" in out.stdout


def _smoke_mode(script: Path) -> bool:
    return script.exists() and "--smoke" in script.read_text()


@pytest.mark.parametrize("name", ["legacy_import_bench.py", "scale_bench.py"])
def test_scale_benches_in_smoke_mode(name, tmp_path):
    """bench/legacy_import_bench.py and bench/scale_bench.py, once they have --smoke."""
    script = BENCH / name
    assert _smoke_mode(script), f"bench/{name} has no --smoke mode"
    needs_services()
    run([f"bench/{name}", "--smoke"])


def test_framework_floor_bench():
    out = run(["bench/framework_floor.py", "--smoke", "--servers", "gthread"])
    assert "bare Flask, gthread" in out.stdout and " 0 errors" in out.stdout
