"""PostgreSQL restarts and a failover to a promoted streaming standby, with a second
PostgreSQL cluster made here (initdb + pg_basebackup on loopback ports), driven through
the provider's own flows: sign-in, SSO, logout, userinfo.

The provider's ``DATABASE_URL`` names both hosts with ``target_session_attrs=read-write``
(libpq's multi-host form), its pool pre-pings connections: after the restart not one
request fails, and after the primary is stopped and the standby promoted the provider
goes on by itself — with every row committed before the failover (people, refresh
tokens, the audit chain through its head). What either fault costs under a steady load
from several clients of a gunicorn-served provider is measured by
test_faults_under_load.py (the same servers, from :mod:`tests.resilience.servers`)."""

from __future__ import annotations

import pytest

from tests.resilience import flows, servers


@pytest.fixture
def pg_pair():
    import shutil

    root = servers.scratch_dir(owner="postgres")
    p_port, s_port = servers.free_ports(2)
    primary, standby = root / "primary", root / "standby"
    try:
        servers.pg_primary(root, p_port)
        servers.pg_run(servers.need("psql"), "-h", "127.0.0.1", "-p", str(p_port), "-U",
                       "postgres", "-c", "CREATE DATABASE idp")
        servers.pg_standby(root, p_port, s_port)
        yield primary, p_port, standby, s_port
    finally:
        for data in (standby, primary):
            if (data / "postmaster.pid").exists():
                servers.pg_stop(data, "immediate")
        shutil.rmtree(root, ignore_errors=True)


def _refresh(app, browser, rp, refresh_token: str) -> int:
    with app.app_context():
        resp = browser.post("/token", headers=rp.basic, data={
            "grant_type": "refresh_token", "refresh_token": refresh_token})
    return resp.status_code


def _counts(app) -> dict:
    from sqlalchemy import func, select

    from idp import audit
    from idp.extensions import db
    from idp.models import Person, RefreshToken

    with app.app_context():
        audit.flush()
        out = {"persons": db.session.scalar(select(func.count()).select_from(Person)),
               "refresh": db.session.scalar(select(func.count()).select_from(RefreshToken)),
               "audit_ok": audit.verify().ok, "head": audit.head()}
        db.session.remove()
    return out


def test_restart_and_failover_to_the_promoted_standby(pg_pair, tmp_path):
    primary, p_port, standby, s_port = pg_pair
    url = (f"postgresql://postgres@/idp?host=127.0.0.1:{p_port}&host=127.0.0.1:{s_port}"
           f"&target_session_attrs=read-write")
    app = flows.provider(str(tmp_path), DATABASE_URL=url, DB_CONNECT_TIMEOUT=2)
    rp1, rp2 = flows.seed(app)
    browser = app.test_client()
    first = flows.sign_in(app, browser, rp1)

    # 1. A restart: every pooled connection is broken; pre-ping replaces them, so not
    #    one request after the restart fails.
    servers.pg_stop(primary)
    servers.pg_start(primary, p_port)
    statuses = [flows.userinfo(app, browser, first["access_token"]) for _ in range(5)]
    assert statuses == [200] * 5
    assert flows.sso_code(app, browser, rp2) is not None

    # 2. Failover: once the standby streams again (it reconnects by itself after the
    #    restart), the primary goes away — a fast shutdown sends the standby all its WAL
    #    first — and the standby is promoted.
    servers.wait_for("the standby streaming", lambda: servers.pg_streaming(p_port), timeout=120)
    before = _counts(app)
    assert before["audit_ok"]
    servers.pg_stop(primary)
    servers.pg_run(servers.need("pg_ctl"), "-D", str(standby), "-w", "promote")
    # The first request may find no primary yet (promotion is under way): refused
    # with a 503, never a 500; then served.
    seen = []
    servers.wait_for("a request served by the promoted standby", lambda: seen.append(
        flows.userinfo(app, browser, first["access_token"])) or seen[-1] == 200, timeout=120)
    assert set(seen) <= {200, 503}, seen
    other = app.test_client()
    second = flows.sign_in(app, other, rp2)  # a new sign-in writes to the new primary
    assert flows.sso_code(app, browser, rp1) is not None
    after = _counts(app)
    assert after["persons"] == before["persons"]
    assert after["refresh"] > before["refresh"]
    assert after["audit_ok"] and after["head"][0] > before["head"][0]
    with app.app_context():
        from idp import audit

        assert audit.verify(expected_head=before["head"]).ok  # nothing before it lost
    flows.logout(app, browser, first["id_token"])
    assert flows.sso_code(app, browser, rp1) is None
    assert flows.userinfo(app, other, second["access_token"]) == 200
    with app.app_context():
        from idp.extensions import db

        db.session.remove()
        db.engine.dispose()
