"""Ending sessions: RP-initiated logout and OpenID Connect Back-Channel Logout 1.0.

Logout tokens are signed in the request (keys need the app), then posted by a small
thread pool with retries, so a slow or dead relying party never holds up the person
who is signing out. Failures are logged with the client id only.
"""

from __future__ import annotations

import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from flask import current_app

from .. import single_logout
from ..clients import find_client
from ..models import Client
from .subject import subject_for
from .tokens import issuer, sign

log = logging.getLogger(__name__)

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bc-logout")


def logout_token(client: Client, sub: str, sid: str) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer(), "aud": client.client_id, "iat": now, "exp": now + 120,
        "jti": secrets.token_urlsafe(16), "sub": sub, "sid": sid,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    alg = client.id_token_signed_response_alg or current_app.config["DEFAULT_ID_TOKEN_ALG"]
    return sign(claims, alg, typ="logout+jwt")


def notify(client_ids: list[str], person_id: str, sid: str) -> list:
    """Send logout tokens to every client of the session that registered a back-channel
    URI. Returns the futures (tests wait on them; the request does not)."""
    if not client_ids:
        return []
    cfg = current_app.config
    clients = [c for c in map(find_client, client_ids) if c is not None]
    futures = []
    for client in clients:
        uri = client.backchannel_logout_uri
        if not uri:
            continue
        token = logout_token(client, subject_for(client, person_id), sid)
        futures.append(_pool.submit(
            _deliver, client.client_id, uri, token, cfg["BACKCHANNEL_LOGOUT_ATTEMPTS"],
            cfg["BACKCHANNEL_LOGOUT_BACKOFF"], cfg["BACKCHANNEL_LOGOUT_TIMEOUT"]))
    return futures


def _deliver(client_id: str, uri: str, token: str, attempts: int, backoff: float,
             timeout: float) -> bool:
    return single_logout.deliver("back-channel logout", client_id, uri,
                                 {"logout_token": token}, attempts=attempts,
                                 backoff=backoff, timeout=timeout)


single_logout.register("oidc", notify)
