"""A client's public keys: registered inline (``jwks``) or by reference (``jwks_uri``).

Keys by reference are what lets a relying party rotate its keys without asking an
operator. Fetching a URL a client names is also a way to make the provider talk to any
address, so the fetch (:mod:`idp.oidc.safe_fetch`) refuses loopback, private,
link-local and reserved addresses unless ``CLIENT_FETCH_ALLOW_PRIVATE`` says otherwise,
with a timeout and a size cap. The key set is cached in the shared store (every worker
sees one copy) for ``CLIENT_JWKS_CACHE_SECONDS``; a ``kid`` the cached set does not have
(the client rotated) re-fetches it, at most once per ``CLIENT_JWKS_REFETCH_INTERVAL``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..store import store
from .safe_fetch import FetchError, fetch


class ClientKeysError(Exception):
    """The client has no usable keys (none registered, the URL failed, bad JSON).

    The message ends up in OAuth error descriptions, which may hold only printable
    ASCII without ``"`` and ``\\`` (RFC 6749 §5.2); anything else is replaced."""

    def __init__(self, message: str):
        super().__init__("".join(c if " " <= c <= "~" and c not in '"\\' else "?"
                                 for c in message))


def _import(data: Any) -> KeySet:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ClientKeysError("not a JSON Web Key Set")
    if any(isinstance(k, dict) and "d" in k for k in data["keys"]):
        # A private key published by mistake: refuse rather than use it.
        raise ClientKeysError("the key set contains a private key")
    try:
        return KeySet.import_key_set(data)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise ClientKeysError(f"invalid key set: {exc}") from None


def check_key_set(data: Any) -> None:
    """Raise ClientKeysError unless ``data`` is a public JSON Web Key Set."""
    _import(data)


def _download(uri: str) -> dict:
    cfg = current_app.config
    try:
        body = fetch(uri, timeout=float(cfg["CLIENT_JWKS_TIMEOUT"]),
                     max_bytes=int(cfg["CLIENT_JWKS_MAX_BYTES"]),
                     allow_private=bool(cfg["CLIENT_FETCH_ALLOW_PRIVATE"]))
    except FetchError as exc:
        raise ClientKeysError(f"jwks_uri: {exc}") from None
    try:
        data = json.loads(body)
    except ValueError:
        raise ClientKeysError("jwks_uri did not return JSON") from None
    _import(data)
    return data


def _cache_key(client_id: str) -> str:
    return f"cjwks:{client_id}"


def _by_reference(client, kid: str | None) -> dict:
    uri = client.meta("jwks_uri")
    cfg = current_app.config
    cached = store().get(_cache_key(client.client_id))
    now = time.time()
    if isinstance(cached, dict) and cached.get("uri") == uri:
        kids = {k.get("kid") for k in cached["jwks"].get("keys", []) if isinstance(k, dict)}
        fresh_enough = now - cached["at"] < float(cfg["CLIENT_JWKS_REFETCH_INTERVAL"])
        if kid is None or kid in kids or fresh_enough:
            return cached["jwks"]
    data = _download(uri)
    store().set(_cache_key(client.client_id), {"uri": uri, "jwks": data, "at": now},
                float(cfg["CLIENT_JWKS_CACHE_SECONDS"]))
    return data


def key_set(client, kid: str | None = None) -> KeySet:
    """The client's public keys; ``kid`` (from a JWS header) lets a rotated key set be
    re-fetched when the cached copy does not have it."""
    if client.meta("jwks_uri"):
        return _import(_by_reference(client, kid))
    if client.jwks:
        return _import(client.jwks)
    raise ClientKeysError("the client has no registered keys")


def has_keys(client) -> bool:
    return bool(client.jwks or client.meta("jwks_uri"))


def forget(client_id: str) -> None:
    store().delete(_cache_key(client_id))
