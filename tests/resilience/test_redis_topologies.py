"""Sign-in, SSO and logout with the short-lived store on Redis Sentinel and Redis
Cluster: real redis-server processes on loopback ports, started here.

Sentinel: a master, a replica and two Sentinels; ``SENTINEL FAILOVER`` promotes the
replica while the provider is running. Sessions written before the failover survive
it and the provider writes to the new master by itself (the old one is a replica and
refuses writes). Cluster: three masters; every store operation is one key, so nothing
crosses slots, and the keys spread over the masters."""

from __future__ import annotations

import time

import pytest
import redis

from tests.resilience import flows, servers

SERVICE = "idpmaster"


@pytest.fixture
def procs():
    p = servers.Processes()
    yield p
    p.stop_all()
    p.remove_dirs()


def _master_port(sentinel: redis.Redis) -> int:
    host, port = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)
    return int(port)


def _replica_known(sentinel: redis.Redis, port: int) -> bool:
    for replica in sentinel.sentinel_slaves(SERVICE):  # redis-py parses each into a dict
        if int(replica["port"]) == port and not replica.get("is_sdown") \
                and replica.get("master-link-status") == "ok":
            return True
    return False


def test_sign_in_sso_and_logout_across_a_sentinel_failover(procs, tmp_path):
    root = procs.scratch()
    m_port, r_port, s1, s2 = servers.free_ports(4)
    master = servers.redis_server(procs, root, m_port)
    replica = servers.redis_server(procs, root, r_port, "--replicaof", "127.0.0.1", str(m_port))
    sentinels = [servers.sentinel_server(procs, root, p, m_port, SERVICE) for p in (s1, s2)]
    servers.wait_for("the replica in sync and known to the Sentinels",
                     lambda: all(_replica_known(s, r_port) for s in sentinels))

    # Ask the Sentinels for the master before every command (production: once a second).
    app = flows.provider(str(tmp_path), REDIS_PREFIX="idp:", REDIS_MASTER_RECHECK_SECONDS=0.001,
                         REDIS_URL=f"redis+sentinel://127.0.0.1:{s1},127.0.0.1:{s2}/{SERVICE}")
    rp1, rp2 = flows.seed(app)
    browser = app.test_client()
    before = flows.sign_in(app, browser, rp1)
    assert flows.sso_code(app, browser, rp2) is not None  # SSO: no password for rp2
    assert master.dbsize() > 0
    # Everything written so far is on the replica before it is promoted.
    assert master.execute_command("WAIT", 1, 5000) == 1

    with flows.Load(app, before["access_token"]) as load:
        started = time.monotonic()
        sentinels[0].execute_command("SENTINEL", "FAILOVER", SERVICE)
        servers.wait_for("the replica promoted",
                         lambda: _master_port(sentinels[0]) == r_port
                         and replica.info("replication")["role"] == "master")
        # Promoted, while the old master may still take writes (the Sentinels demote it
        # a few seconds later): once the Sentinels agree on the new master, what the
        # store writes must reach it, not the old one's pooled connections (it would be
        # thrown away on demotion). redis-py takes the first Sentinel's answer.
        servers.wait_for("every Sentinel naming the new master",
                         lambda: all(_master_port(s) == r_port for s in sentinels))
        _write_through_the_store(app, "probe:after-promotion")
        assert replica.exists("idp:probe:after-promotion")
        servers.wait_for("the old master demoted",
                         lambda: master.info("replication")["role"] == "slave")
        load.wait_good(started)
    cost = load.cost(started)
    print(f"\nSentinel failover under load: {cost}")
    # Only requests in flight may fail, and only with a 503 — never a 500 or a 200
    # for something that could not be checked.
    assert set(cost["statuses"]) <= {503}, cost

    # The session made before the failover is still an SSO session; the access token
    # issued before it still passes its revocation check.
    assert flows.sso_code(app, browser, rp1) is not None
    assert flows.userinfo(app, browser, before["access_token"]) == 200
    # New state goes to the new master: a second person's sign-in, and a logout.
    other = app.test_client()
    written_before = replica.dbsize()
    after = flows.sign_in(app, other, rp2)
    assert replica.dbsize() > written_before
    flows.logout(app, browser, before["id_token"])
    assert flows.sso_code(app, browser, rp2) is None  # signed out everywhere
    assert flows.sso_code(app, other, rp1) is not None  # the other session untouched
    assert flows.userinfo(app, other, after["access_token"]) == 200
    with pytest.raises(redis.ReadOnlyError):
        master.set("idp:probe", "1")  # the old master really refuses writes


def _write_through_the_store(app, key: str) -> None:
    from idp.store import store

    with app.app_context():
        store().set(key, 1, 60)


def test_sign_in_sso_lockout_and_logout_on_a_cluster(procs, tmp_path):
    root = procs.scratch()
    ports = servers.cluster_ports(3)
    nodes = servers.cluster(procs, root, ports)
    app = flows.provider(str(tmp_path), REDIS_PREFIX="idp:",
                         REDIS_URL=f"redis+cluster://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}")
    rp1, rp2 = flows.seed(app)
    browser = app.test_client()
    tokens = flows.sign_in(app, browser, rp1)
    assert flows.sso_code(app, browser, rp2) is not None
    assert flows.userinfo(app, browser, tokens["access_token"]) == 200

    # Wrong passwords: counters and tickets (Lua scripts and SET NX) on a cluster.
    from tests.helpers import authorize_url, follow_login

    with app.app_context():
        for _ in range(app.config["LOCKOUT_THRESHOLD"] + 1):
            c = app.test_client()
            last = follow_login(c, c.get(authorize_url(rp1)), password="wrong-pass-123")
        assert "锁定" in last.get_data(as_text=True)

    flows.logout(app, browser, tokens["id_token"])
    assert flows.sso_code(app, browser, rp1) is None
    # Revocation of the logged-out session's tokens is read from the cluster too.
    with app.app_context():
        revoked = browser.post("/revoke", headers=rp1.basic,
                               data={"token": tokens["access_token"]})
    assert revoked.status_code == 200
    assert flows.userinfo(app, browser, tokens["access_token"]) == 401
    assert sum(1 for n in nodes if n.dbsize() > 0) >= 2  # keys spread over the masters
