"""REDIS_URL forms (idp.store.connect) and the operations settings (settings.validate)."""

from __future__ import annotations

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from idp.settings import ConfigError, validate
from idp.store.connect import check, connect, describe


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "rediss://:pw@cache.example:6380/1", "unix:///run/redis.sock",
    "redis+sentinel://s1:26379,s2:26380/mymaster", "redis+sentinel://s1/mymaster/2",
    "rediss+sentinel://u:p@[::1]:26379/svc?sentinel_password=x",
    "redis+cluster://n1:7000,n2:7001", "rediss+cluster://n1:7000",
])
def test_accepted_forms(url):
    assert check(url) is None


@pytest.mark.parametrize("url,problem", [
    ("http://h:6379", "must start with one of"),
    ("redis+sentinel://s1:26379", "must name the Sentinel service"),
    ("redis+sentinel://s1:26379,/svc", None),  # an empty entry is ignored
    ("redis+cluster://n1:99999", "is not host:port"),
    ("redis+cluster://:7000", "is not host:port"),
    ("redis+cluster://", "no host:port given"),
])
def test_refused_forms(url, problem):
    if problem is None:
        assert check(url) is None
    else:
        assert problem in check(url)


def test_sentinel_client_asks_the_sentinels_for_its_master():
    client = connect("redis+sentinel://:secret@127.0.0.1:1,127.0.0.1:2/svc/3"
                     "?sentinel_password=sp")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "svc"
    assert [c.connection_pool.connection_kwargs["port"] for c in pool.sentinel_manager.sentinels
            ] == [1, 2]
    assert pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs["password"] \
        == "sp"
    assert pool.connection_kwargs["password"] == "secret"
    assert pool.connection_kwargs["db"] == 3
    # Nothing listens there: the failure is a ConnectionError the store turns into 503s.
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()


def test_passwords_never_shown():
    assert describe("redis://:hunter2@h:6379/0") == "redis://***@h:6379/0"
    assert "hunter2" not in describe("redis+sentinel://u:hunter2@s1:1,s2:2/svc")


@pytest.mark.parametrize("cfg,problem", [
    ({"REDIS_URL": "redis+cluster://h:x"}, "REDIS_URL="),
    ({"REDIS_URL": "redis://:hunter2@h:notaport/0"}, "REDIS_URL="),
    ({"METRICS_ALLOW": ["10.0.0.0/8", "not-a-net"]}, "IDP_METRICS_ALLOW: 'not-a-net'"),
    ({"METRICS_TOKEN": "short"}, "IDP_METRICS_TOKEN must be at least 16"),
])
def test_settings_refuse_bad_operations_values(cfg, problem):
    from config import default

    base = {k: getattr(default, k) for k in dir(default) if k.isupper()}
    validate(base)  # the defaults pass
    with pytest.raises(ConfigError) as err:
        validate({**base, **cfg})
    assert problem in str(err.value)
    assert "hunter2" not in str(err.value)
