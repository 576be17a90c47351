"""Short-lived shared state behind one small interface.

SSO sessions, authorization codes, requests waiting for login or consent, rate-limit
and lockout counters, revoked token ids and seen ``jti`` values all expire on their
own. Nothing of this is kept in process memory, so any number of workers behind a
load balancer act as one provider. Two backends: ``SQLStore`` (the embedded default,
same database as everything else) and ``RedisStore`` (production: standalone, Sentinel
or Cluster, see :mod:`.connect`). When the backend cannot be reached every operation
raises :class:`StoreUnavailable`; nothing falls back to "absent".
"""

from __future__ import annotations

from flask import current_app

from .base import Store, StoreUnavailable


def make_store(config: dict, engine_factory) -> Store:
    if config.get("REDIS_URL"):
        from .redis import RedisStore

        return RedisStore(config["REDIS_URL"], prefix=config.get("REDIS_PREFIX", "idp:"),
                          master_recheck=float(config.get("REDIS_MASTER_RECHECK_SECONDS", 1.0)))
    from .sql import SQLStore

    return SQLStore(engine_factory)


def store() -> Store:
    return current_app.extensions["idp.store"]


__all__ = ["Store", "StoreUnavailable", "make_store", "store"]
