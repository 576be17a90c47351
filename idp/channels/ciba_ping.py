"""CIBA ping mode (CIBA Core §10.2): instead of polling, the client is told when the
person has decided.

A client registered with ``backchannel_token_delivery_mode`` ``ping`` and a
``backchannel_client_notification_endpoint`` (https; checked at registration) sends a
``client_notification_token`` with each backchannel request. When the person approves
or denies, the provider POSTs ``{"auth_req_id": ...}`` to that endpoint with
``Authorization: Bearer <client_notification_token>``; the client then fetches the
result at the token endpoint exactly as in poll mode. The notification goes out on a
background thread (the person's tap does not wait for the client's server), through
the same guarded fetch as ``jwks_uri`` (no private addresses unless configured,
timeout, no redirects); a failed notification is logged, and the client can still poll.

The notification token is a bearer credential for the client's endpoint: it is kept in
the request's store record sealed with SM4-GCM (like a pending sign-in request), and
opened only to send the notification.
"""

from __future__ import annotations

import json
import logging
import threading

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import current_app

from .. import audit
from ..crypto.fieldcrypt import DecryptionError
from ..oidc.safe_fetch import FetchError, fetch
from . import approvals

log = logging.getLogger(__name__)
MAX_NOTIFICATION_TOKEN = 1024
_SEAL_CONTEXT = "ciba-ping"


def _crypto():
    return current_app.extensions["idp.fieldcrypto"]


def seal(token: str) -> str:
    """The notification token as it is stored (SM4-GCM under the field key)."""
    return _crypto().encrypt(token, _SEAL_CONTEXT)


def _unseal(value) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return _crypto().decrypt(value, _SEAL_CONTEXT)
    except (DecryptionError, ValueError):
        return None


def is_ping(client) -> bool:
    return client.meta("backchannel_token_delivery_mode") == "ping"


def notification_token(client, value: str | None) -> str | None:
    """The request's ``client_notification_token`` (required of ping clients, §7.1)."""
    if not is_ping(client):
        return None
    if not value:
        raise InvalidRequestError("Ping mode requires a 'client_notification_token'.")
    if len(value) > MAX_NOTIFICATION_TOKEN or not value.isascii() or not value.isprintable():
        raise InvalidRequestError("The 'client_notification_token' is malformed.")
    return value


def _send(endpoint: str, token: str, auth_req_id: str, *, timeout: float,
          allow_private: bool) -> None:
    try:
        fetch(endpoint, timeout=timeout, max_bytes=4096, allow_private=allow_private,
              method="POST", body=json.dumps({"auth_req_id": auth_req_id}).encode(),
              headers={"Authorization": f"Bearer {token}",
                       "Content-Type": "application/json"},
              ok_status=(200, 204))
    except FetchError as exc:
        log.warning("CIBA ping to %s failed: %s", endpoint, exc)


def notify(a: approvals.Approval) -> threading.Thread | None:
    """Tell a ping client that request ``a`` was decided (approved or denied)."""
    ping = (a.extra or {}).get("ping")
    if not ping:
        return None
    token = _unseal(ping.get("token_sealed"))
    if token is None:
        log.warning("CIBA ping for request %s: the notification token cannot be opened",
                    a.id[:8])
        return None
    cfg = current_app.config
    audit.record("ciba.ping", actor="system", subject=a.person_id, client_id=a.client_id,
                 details={"request": a.id[:8], "state": a.state})
    worker = threading.Thread(
        target=_send, args=(ping["endpoint"], token, a.id),
        kwargs={"timeout": float(cfg["CIBA_PING_TIMEOUT"]),
                "allow_private": bool(cfg["CLIENT_FETCH_ALLOW_PRIVATE"])},
        name=f"ciba-ping-{a.id[:8]}", daemon=True)
    worker.start()
    return worker


approvals.on_decided("ciba", notify)
