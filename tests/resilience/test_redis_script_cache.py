"""A Redis restart empties the server's Lua script cache. A token request caught between
its pipeline's check of the scripts and their run (the server restarted in between —
found by the fault run, test_faults_under_load.py, as an occasional ``/token`` 500) gets
``NOSCRIPT``: it must be refused like any request that met Redis restarting — 503
``temporarily_unavailable`` — and the next request loads the scripts again.

The window is a few milliseconds wide in a real restart; here it is held open: the
pipeline's own script check is skipped (``Pipeline.load_scripts``) and the cache flushed,
which is exactly the state the server is in when the race is lost."""

from __future__ import annotations

import pytest
import redis
from redis.client import Pipeline

from tests.helpers import exchange, get_code
from tests.resilience import flows, servers


@pytest.fixture
def redis_port():
    procs = servers.Processes()
    try:
        (port,) = servers.free_ports(1)
        servers.redis_server(procs, procs.scratch(), port)
        yield port
    finally:
        procs.stop_all()
        procs.remove_dirs()


def test_a_token_request_that_meets_an_empty_script_cache_is_a_503(redis_port, tmp_path,
                                                                     monkeypatch):
    app = flows.provider(str(tmp_path), REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    rp1, _rp2 = flows.seed(app)
    browser = app.test_client()
    flows.sign_in(app, browser, rp1)  # the scripts are loaded and used once
    with app.app_context():
        code, _q, verifier = get_code(browser, rp1)
        with monkeypatch.context() as patch:
            patch.setattr(Pipeline, "load_scripts", lambda self: None)
            redis.Redis(port=redis_port).script_flush()
            resp = exchange(browser, rp1, code, verifier)
        assert resp.status_code == 503, resp.get_data(as_text=True)
        assert resp.get_json()["error"] == "temporarily_unavailable"
        assert resp.headers["Retry-After"]
    # The next sign-in and exchange load the scripts again.
    assert flows.sign_in(app, app.test_client(), rp1)["access_token"]
