"""Single logout across protocols: ending a session tells every relying party of it.

Each protocol registers how it tells its relying parties (OIDC back-channel logout
tokens, CAS and SAML logout requests), so ending a session — the person's own logout, a
password reset, an operator ending someone's sessions — is one call, whatever the
relying parties speak. This module knows no protocol; they know it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import requests

from . import audit
from .authn import session as sso
from .clients import find_client

log = logging.getLogger(__name__)

# protocol -> notify(client_ids, person_id, sid) -> list of futures (tests wait on them)
Notifier = Callable[[list[str], str, str], list]
_NOTIFIERS: dict[str, Notifier] = {}


def register(protocol: str, notify: Notifier) -> None:
    _NOTIFIERS[protocol] = notify


def _protocol_of(client_id: str) -> str:
    client = find_client(client_id)
    return client.meta("protocol", "oidc") if client is not None else "oidc"


def end_session(sess: sso.SSOSession, *, actor: str | None = None,
                reason: str | None = None) -> list:
    """End ``sess`` and notify its relying parties; returns the notifiers' futures."""
    client_ids = sso.session_clients(sess)
    sso.end(sess)
    details = {"sid": sess.sid, "notified_clients": client_ids}
    if reason:
        details["reason"] = reason
    audit.record("logout", actor=actor or sess.person_id, subject=sess.person_id,
                 details=details)
    by_protocol: dict[str, list[str]] = {}
    for cid in client_ids:
        by_protocol.setdefault(_protocol_of(cid), []).append(cid)
    futures: list = []
    for protocol, ids in by_protocol.items():
        notify = _NOTIFIERS.get(protocol)
        if notify is not None:
            futures.extend(notify(ids, sess.person_id, sess.sid))
    return futures


def end_all_sessions(person_id: str, *, actor: str, reason: str,
                     keep: sso.SSOSession | None = None) -> list:
    """End every live session of a person (``keep``: except this one, e.g. the browser
    that just changed the password); returns the notifiers' futures."""
    futures: list = []
    for sess in sso.sessions_of(person_id):
        if keep is not None and sess.key == keep.key:
            continue
        futures.extend(end_session(sess, actor=actor, reason=reason))
    return futures


def deliver(what: str, client_id: str, url: str, data: dict, *, attempts: int,
            backoff: float, timeout: float, redirect_ok: bool = False) -> bool:
    """POST a logout message to a relying party, retrying with doubling delays; every
    protocol's notifier sends through this one loop (run on its own thread pool). Only
    the client id and the kind of failure are logged."""
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            resp = requests.post(url, data=data, timeout=timeout, allow_redirects=False,
                                 headers={"Cache-Control": "no-store"})
            # CAS services often answer their logout callback with a redirect.
            if 200 <= resp.status_code < (400 if redirect_ok else 300):
                log.info("%s delivered to %s", what, client_id)
                return True
            reason = f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            reason = type(exc).__name__
        log.warning("%s to %s failed (attempt %d/%d): %s", what, client_id, attempt,
                    attempts, reason)
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    log.error("%s to %s abandoned after %d attempts", what, client_id, attempts)
    return False
