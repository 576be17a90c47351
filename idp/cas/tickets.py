"""CAS tickets in the shared store: service and proxy tickets (single use, seconds),
proxy-granting tickets (reusable until they expire or the session ends) and the
session's list of service tickets, which single logout names to each service.

Only a ticket's SHA-256 is a store key, as for SSO cookies: a copy of Redis holds no
ticket anyone could present. A ticket is taken (read and deleted in one step) on its
first validation, whether that validation succeeds or not (CAS 3.0 §3.1.1, §3.2)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from flask import current_app

from ..store import store

# The CAS 3.0 prefixes (§3.1, §3.3, §3.4, §3.5); the rest is [0-9a-f] (§3.1.1 allows
# only letters, digits and '-').
ST, PT, PGT, PGTIOU = "ST", "PT", "PGT", "PGTIOU"
MAX_TICKET_LENGTH = 256


@dataclass
class Ticket:
    """What a ticket stands for: a sign-in of one person, for one exact service."""

    kind: str                   # ST, PT or PGT
    client_id: str
    service: str                # the exact service URL (ST, PT) or the pgtUrl (PGT)
    person_id: str
    sid: str                    # the SSO session (single logout ends its PGTs)
    auth_time: int
    scope: str = ""
    acr: str | None = None
    amr: list[str] = field(default_factory=list)
    channel: str = "web"
    membership_id: str | None = None
    new_login: bool = False     # issued from a sign-in made for this request (renew)
    proxies: list[str] = field(default_factory=list)  # nearest proxy first (§2.6.2)


def _key(ticket: str) -> str:
    return "cas:t:" + hashlib.sha256(ticket.encode()).hexdigest()


def new_id(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(24)}"


def plausible(ticket: str | None, kinds: tuple[str, ...]) -> bool:
    return (isinstance(ticket, str) and len(ticket) <= MAX_TICKET_LENGTH
            and ticket.split("-", 1)[0] in kinds)


def issue(t: Ticket) -> str:
    cfg = current_app.config
    ticket = new_id(t.kind)
    ttl = cfg["CAS_PGT_TTL"] if t.kind == PGT else cfg["CAS_TICKET_TTL"]
    store().set(_key(ticket), asdict(t), ttl)
    if t.kind == PGT:
        store().append(f"cas:pgts:{t.sid}", ticket, cfg["CAS_PGT_TTL"])
    return ticket


def _from_record(record: Any) -> Ticket | None:
    if not isinstance(record, dict):
        return None
    known = {f.name for f in fields(Ticket)}
    try:
        return Ticket(**{k: v for k, v in record.items() if k in known})
    except TypeError:
        return None


def take(ticket: str) -> Ticket | None:
    """The service or proxy ticket, used up (None if unknown, used or expired)."""
    t = _from_record(store().take(_key(ticket)))
    return t if t is not None and t.kind in (ST, PT) else None


def granting(pgt: str) -> Ticket | None:
    """The proxy-granting ticket (not used up: it makes one proxy ticket per call)."""
    t = _from_record(store().get(_key(pgt)))
    return t if t is not None and t.kind == PGT else None


def revoke(ticket: str) -> None:
    store().delete(_key(ticket))


def remember_for_logout(sid: str, client_id: str, service: str, ticket: str) -> None:
    store().append(f"cas:slo:{sid}", {"client_id": client_id, "service": service,
                                      "ticket": ticket},
                   current_app.config["SSO_ABSOLUTE_TIMEOUT"])


def end_session(sid: str) -> list[dict]:
    """The session's service tickets (for logout requests); its PGTs are deleted."""
    for pgt in store().members(f"cas:pgts:{sid}"):
        if isinstance(pgt, str):
            store().delete(_key(pgt))
    store().delete(f"cas:pgts:{sid}")
    issued = [e for e in store().members(f"cas:slo:{sid}") if isinstance(e, dict)]
    store().delete(f"cas:slo:{sid}")
    return issued
