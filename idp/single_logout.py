"""Single logout across protocols: ending a session tells every relying party of it.

Each protocol registers how it tells its relying parties (OIDC back-channel logout
tokens, CAS and SAML logout requests), so ending a session — the person's own logout, a
password reset, an operator ending someone's sessions — is one call, whatever the
relying parties speak. This module knows no protocol; they know it.
"""

from __future__ import annotations

from collections.abc import Callable

from . import audit
from .authn import session as sso
from .clients import find_client

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
