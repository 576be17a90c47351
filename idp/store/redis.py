"""Redis backend. Each operation is one round trip, atomic on the server."""

from __future__ import annotations

import json
import math
from typing import Any

import redis

from .base import Store


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


class RedisStore(Store):
    def __init__(self, url: str, prefix: str = "idp:"):
        self.client = redis.Redis.from_url(url, socket_timeout=5, health_check_interval=30)
        self.prefix = prefix

    def _k(self, key: str) -> str:
        return self.prefix + key

    def get(self, key):
        raw = self.client.get(self._k(key))
        return None if raw is None else json.loads(raw)

    def set(self, key, value, ttl):
        self.client.set(self._k(key), json.dumps(value), px=_ms(ttl))

    def add(self, key, value, ttl):
        return bool(self.client.set(self._k(key), json.dumps(value), px=_ms(ttl), nx=True))

    def take(self, key):
        raw = self.client.getdel(self._k(key))
        return None if raw is None else json.loads(raw)

    def delete(self, key):
        self.client.delete(self._k(key))

    def incr(self, key, ttl):
        k = self._k(key)
        pipe = self.client.pipeline()
        pipe.incr(k)
        pipe.pexpire(k, _ms(ttl), nx=True)
        return int(pipe.execute()[0])

    def append(self, key, value, ttl):
        k = self._k(key)
        pipe = self.client.pipeline()
        pipe.rpush(k, json.dumps(value))
        pipe.pexpire(k, _ms(ttl), gt=True)
        pipe.pexpire(k, _ms(ttl), nx=True)
        pipe.execute()

    def members(self, key) -> list[Any]:
        return [json.loads(v) for v in self.client.lrange(self._k(key), 0, -1)]

    def touch(self, key, ttl):
        return bool(self.client.pexpire(self._k(key), _ms(ttl)))
