"""Which registered CAS client a ``service`` URL belongs to."""

from __future__ import annotations

import time

from ..clients import find_client
from ..extensions import db
from ..models import Client
from .services import matches, well_formed

_CACHE_SECONDS = 5.0
_patterns: tuple[float, list[tuple[str, str]]] = (0.0, [])


def _all_patterns(fresh: bool = False) -> list[tuple[str, str]]:
    """(pattern, client id) of every CAS client, longest pattern first, from a cache of a
    few seconds (a removal reaches every worker quickly, as in find_client)."""
    global _patterns
    now = time.monotonic()
    if _patterns[0] > now and not fresh:
        return _patterns[1]
    rows = db.session.execute(db.select(Client.client_id, Client.client_metadata)).all()
    found = [(p, cid) for cid, meta in rows if (meta or {}).get("protocol") == "cas"
             for p in (meta or {}).get("cas_services", [])]
    found.sort(key=lambda pc: len(pc[0]), reverse=True)
    _patterns = (now + _CACHE_SECONDS, found)
    return found


def client_for(service: str | None):
    """The CAS client whose most specific pattern admits ``service``, or None."""
    if not service or not well_formed(service):
        return None
    # A service no cached pattern admits is looked up once more in the database, so a
    # client registered a moment ago (on any worker) is found at once.
    for fresh in (False, True):
        for pattern, client_id in _all_patterns(fresh):
            if matches(pattern, service):
                client = find_client(client_id)
                if client is not None and client.protocol == "cas":
                    return client
    return None
