"""Redis backend (standalone, Sentinel or Cluster; see :mod:`.connect`).

Each operation is one command or one Lua script on ONE key, so it is atomic on the
server and, in a Cluster, lands in one hash slot: no operation of the store interface
touches two keys, so keys need no hash tags and spread over every master. (A caller
that keeps an index — a person's sessions, a grant's token ids — keeps it under its own
key and reads it with its own command; none relies on two keys changing together.)
Anything that stops the command reaching a server raises :class:`StoreUnavailable`.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from typing import Any

import redis

from .base import Store, StoreUnavailable
from .connect import connect, describe

# Counters start their window with the first increment; the key and its time to live
# are written together, so a crash between the two cannot leave a counter that never
# expires (a lockout for ever).
_INCR = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
return n
"""
# A list's time to live only ever grows: the longest-lived member keeps it.
_APPEND = """
redis.call('RPUSH', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

# What "cannot reach Redis" looks like: refused or dropped connections, timeouts, no
# master known to the Sentinels, a cluster with slots uncovered. Answers from a healthy
# server (a wrong type, a script error) are bugs and stay what they are.
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
               redis.exceptions.BusyLoadingError, redis.exceptions.MasterDownError,
               redis.exceptions.RedisClusterException, redis.exceptions.ReadOnlyError,
               redis.exceptions.SlotNotCoveredError,
               redis.exceptions.RedisClusterUnreachableError)
# NOSCRIPT: a pipeline checked its Lua scripts on the server, which then restarted (or a
# replica was promoted) before they ran, so the script cache is empty. A request caught in
# the middle of that is failed like one caught by a dropped connection (a 503); the next
# one loads the scripts again. Only for the outage answer at the edge, not for retries.
OUTAGE = (*UNREACHABLE, redis.exceptions.NoScriptError)


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


def _guarded(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"redis {describe(self.url)}: {type(exc).__name__}") \
                from exc
    return call


class RedisStore(Store):
    backend = "redis"

    def __init__(self, url: str, prefix: str = "idp:", *, master_recheck: float = 1.0):
        self.url = url
        self.prefix = prefix
        self._client = None
        self._lock = threading.Lock()
        self.master_recheck = master_recheck
        self._master_checked = 0.0

    @property
    def client(self):
        # Made at first use, not at start-up: a Cluster client asks its nodes for the
        # slot map as it is made, and a provider started while Redis is down must come
        # up (answering 503 and /readyz) rather than fail to start.
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = connect(self.url)
                    self._incr = client.register_script(_INCR)
                    self._append = client.register_script(_APPEND)
                    self._client = client
        self._follow_master()
        return self._client

    def _follow_master(self) -> None:
        """Behind Sentinels, ask them for the master again at most every
        ``master_recheck`` seconds. redis-py asks only when it opens a connection, so after
        a failover pooled connections kept writing to the old master until the Sentinels
        demoted it (up to ~10 s, found by the fault run), and what they wrote there —
        sessions, codes, revocations — was thrown away with its data. When the answer
        changes, redis-py's pool drops its idle connections and refuses to take back the
        busy ones, so the next command goes to the new master."""
        pool = getattr(self._client, "connection_pool", None)
        if pool is None or not hasattr(pool, "get_master_address"):
            return  # not a Sentinel client
        now = time.monotonic()
        if now - self._master_checked < self.master_recheck:
            return
        self._master_checked = now  # first, so concurrent threads do not all ask
        try:
            pool.get_master_address()
        except UNREACHABLE:
            pass  # the command itself will meet the outage and say so

    def _k(self, key: str) -> str:
        return self.prefix + key

    @_guarded
    def ping(self) -> None:
        self.client.ping()

    @_guarded
    def get(self, key):
        raw = self.client.get(self._k(key))
        return None if raw is None else json.loads(raw)

    @_guarded
    def set(self, key, value, ttl):
        self.client.set(self._k(key), json.dumps(value), px=_ms(ttl))

    @_guarded
    def add(self, key, value, ttl):
        return bool(self.client.set(self._k(key), json.dumps(value), px=_ms(ttl), nx=True))

    @_guarded
    def take(self, key):
        raw = self.client.getdel(self._k(key))
        return None if raw is None else json.loads(raw)

    @_guarded
    def delete(self, key):
        self.client.delete(self._k(key))

    @_guarded
    def incr(self, key, ttl):
        self.client  # noqa: B018 - makes the scripts
        return int(self._incr(keys=[self._k(key)], args=[_ms(ttl)]))

    @_guarded
    def append(self, key, value, ttl):
        self.client  # noqa: B018 - makes the scripts
        self._append(keys=[self._k(key)], args=[json.dumps(value), _ms(ttl)])

    @_guarded
    def append_many(self, items):
        # One pipeline (one round trip; in a Cluster, one per node): still one script
        # per key, so each list is changed atomically and no command spans two slots.
        client = self.client
        pipe = client.pipeline(transaction=False)
        for key, value, ttl in items:
            self._append(keys=[self._k(key)], args=[json.dumps(value), _ms(ttl)], client=pipe)
        pipe.execute()

    @_guarded
    def members(self, key) -> list[Any]:
        return [json.loads(v) for v in self.client.lrange(self._k(key), 0, -1)]

    @_guarded
    def touch(self, key, ttl):
        return bool(self.client.pexpire(self._k(key), _ms(ttl)))
