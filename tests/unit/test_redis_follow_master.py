"""Behind Sentinels the store asks again which node is the master, at most every
``master_recheck`` seconds: redis-py itself asks only when it opens a connection, so
after a failover its pooled connections went on writing to the old master until the
Sentinels demoted it, and those writes were lost (tests/resilience found it)."""

from __future__ import annotations

import redis

from idp.store.redis import RedisStore


class _Pool:
    """Stands in for redis-py's SentinelConnectionPool: only what the store calls."""

    def __init__(self, fail: bool = False):
        self.asked = 0
        self.fail = fail

    def get_master_address(self):
        self.asked += 1
        if self.fail:
            raise redis.exceptions.ConnectionError("no Sentinel answers")
        return ("10.0.0.2", 6379)


class _Client:
    def __init__(self, pool):
        self.connection_pool = pool


def _store(pool, recheck: float) -> RedisStore:
    store = RedisStore("redis+sentinel://s1:26379/svc", master_recheck=recheck)
    store._client = _Client(pool)  # made already: no network in a unit test
    return store


def test_the_master_is_asked_for_again_once_the_interval_has_passed(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("idp.store.redis.time.monotonic", lambda: now[0])
    pool = _Pool()
    store = _store(pool, recheck=1.0)
    for _ in range(5):
        store.client  # noqa: B018 - every store operation goes through it
    assert pool.asked == 1  # once per interval, not per command
    now[0] += 1.5
    store.client  # noqa: B018
    assert pool.asked == 2


def test_sentinels_not_answering_leave_the_command_to_meet_the_outage(monkeypatch):
    pool = _Pool(fail=True)
    store = _store(pool, recheck=0.0)
    assert isinstance(store.client, _Client)  # no exception here
    assert pool.asked == 1


def test_a_plain_redis_client_is_left_alone():
    store = RedisStore("redis://127.0.0.1:6379/0")
    store._client = redis.Redis()  # its pool has no master to follow
    assert store.client is store._client
