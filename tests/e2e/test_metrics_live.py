"""``/metrics`` under ``idp serve`` with several gunicorn workers: prometheus-client's
multi-process mode adds up every worker's counters, so one scrape (answered by any
worker) counts every request; access by allow-list or token, else 404 — set through
the environment, as operators do."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import LiveIdP, backend_env, free_port

N = 40


def _value(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_metrics_add_up_every_worker_and_refuse_strangers(tmp_path):
    token = secrets.token_hex(24)
    metrics_dir = tmp_path / "metrics"
    with backend_env() as shared:
        idp = LiveIdP(port=free_port(), issuer="http://127.0.0.1", instance_path=tmp_path / "i",
                      shared_env={**shared, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                                  # loopback is NOT in the list: only the token gets in
                                  "IDP_METRICS_ALLOW": "192.0.2.0/24",
                                  "IDP_METRICS_TOKEN": token})
        idp.run_cli("init")
        rp = idp.run_cli("client", "add", "--client-id", "metrics-rp", "--redirect-uri",
                         "http://127.0.0.1/cb", "--grant-type", "client_credentials")
        idp.start("--workers", "2", "--threads", "2")
        try:
            def one(i: int) -> int:
                # A new connection each time, so the kernel spreads them over workers.
                with requests.Session() as s:
                    if i % 2:
                        return s.get(idp.url("/healthz"), timeout=10).status_code
                    return s.post(idp.url("/token"), timeout=10,
                                  auth=(rp["client_id"], rp["client_secret"]),
                                  data={"grant_type": "client_credentials"}).status_code

            with ThreadPoolExecutor(6) as pool:
                statuses = list(pool.map(one, range(N)))
            assert statuses == [200] * N

            assert requests.get(idp.url("/metrics"), timeout=10).status_code == 404
            wrong = requests.get(idp.url("/metrics"), timeout=10,
                                 headers={"Authorization": "Bearer " + token[:-1] + "x"})
            assert wrong.status_code == 404
            resp = requests.get(idp.url("/metrics"), timeout=10,
                                headers={"Authorization": "Bearer " + token})
            assert resp.status_code == 200
            text = resp.text
            assert _value(text, "idp_http_requests_total", endpoint="/healthz",
                          method="GET", status="200") == N // 2
            assert _value(text, "idp_http_requests_total", endpoint="/token",
                          method="POST", status="200") == N // 2
            assert _value(text, "idp_tokens_issued_total", grant="client_credentials") == N // 2
            assert _value(text, "idp_http_request_duration_seconds_count",
                          endpoint="/token") == N // 2
            ready = requests.get(idp.url("/readyz"), timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["redis"] == "ok"
            # More than one worker wrote counters: the sum above spans processes.
            writers = {p.name for p in metrics_dir.glob("counter_*.db")}
            assert len(writers) >= 2, writers
        finally:
            idp.stop()
