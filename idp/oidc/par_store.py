"""Where pushed authorization requests wait for ``/authorize`` (RFC 9126 §2.2): the
short-lived store, under a random reference, bound to the client that pushed them."""

from __future__ import annotations

import secrets
from typing import Any

from ..store import store

URN_PREFIX = "urn:ietf:params:oauth:request_uri:"


def _key(ref: str) -> str:
    return f"par:{ref}"


def keep(client_id: str, params: dict[str, Any], ttl: int) -> str:
    """Store ``params``; the ``request_uri`` that names them."""
    ref = secrets.token_urlsafe(32)
    store().set(_key(ref), {"client_id": client_id, "params": params}, ttl)
    return URN_PREFIX + ref


def take(request_uri: Any, client_id: str) -> dict[str, Any] | None:
    """The pushed parameters for ``request_uri``, once; None if unknown, used, expired or
    pushed by another client (a reference is worthless to anyone but its client)."""
    if not isinstance(request_uri, str) or not request_uri.startswith(URN_PREFIX) \
            or len(request_uri) > 128:
        return None
    record = store().take(_key(request_uri[len(URN_PREFIX):]))
    if not isinstance(record, dict) or record.get("client_id") != client_id:
        return None
    return record["params"]
