"""Fixed-window request limits per client address (and per any other key).

Anything an unauthenticated request can make the server store or send — pending
authorization requests, device codes, QR tickets, SMS codes — is limited per address,
so a caller cannot grow the short-lived store without bound. The address is
``request.remote_addr``, which the app factory's ProxyFix sets from
``X-Forwarded-For`` only for ``TRUSTED_PROXIES`` hops: a client cannot choose it.
Every per-address limit counts an IPv6 client by its /64 (see :func:`address_bucket`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from flask import current_app, request

from .store import store


def address_bucket(ip: str) -> str:
    """The address a per-client limit counts: an IPv6 host usually holds a whole /64,
    so counting single addresses would give it 2**64 budgets; an IPv4 client seen
    through an IPv6 socket (``::ffff:a.b.c.d``) is the same client as ``a.b.c.d``."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if addr.version == 6:
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))
    return str(addr)


def client_address() -> str:
    """This request's client, bucketed as every per-address limit counts it."""
    return address_bucket(request.remote_addr or "unknown")


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
