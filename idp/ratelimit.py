"""Fixed-window request limits per client address (and per any other key).

Anything an unauthenticated request can make the server store or send — pending
authorization requests, device codes, QR tickets, SMS codes — is limited per address,
so a caller cannot grow the short-lived store without bound. The address is
``request.remote_addr``, which the app factory's ProxyFix sets from
``X-Forwarded-For`` only for ``TRUSTED_PROXIES`` hops: a client cannot choose it.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request

from .store import store


def client_address() -> str:
    return request.remote_addr or "unknown"


def _key(bucket: str, value: str) -> str:
    # Keyed, so the store holds neither addresses nor identifiers in the clear.
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, f"{bucket}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"rl:{bucket}:{digest}"


def exceeded(bucket: str, limit: int, window: float, value: str | None = None) -> bool:
    """Count one more use of ``bucket`` by ``value`` (default: the client address) and
    say whether it is over ``limit`` in the current ``window`` seconds. The count is
    one atomic increment before the caller acts, so parallel requests cannot all slip
    under the limit (a check-then-increment would let a burst through)."""
    if limit <= 0:
        return False
    return store().incr(_key(bucket, value or client_address()), window) > limit
