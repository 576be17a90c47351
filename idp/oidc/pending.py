"""Authorization requests waiting for the person to sign in or consent.

The request's parameters are kept in the store under a random id (``_rid``); the
login and consent pages carry only that id. When they are done they send the browser
back to ``/authorize`` with the original parameters plus ``_rid``, and the request is
validated again from scratch — there is one code path that issues codes.
The record is bound to the browser that started it (a random value in its signed
UI cookie), so a ``_rid`` copied to another browser is worthless.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

from flask import current_app, session, url_for

from ..store import store


def browser_id() -> str:
    if "bid" not in session:
        session["bid"] = secrets.token_urlsafe(16)
    return session["bid"]


def create(params: dict[str, str], *, next: str | None = None) -> str:  # noqa: A002
    """A pending request. ``next``: a local page to return to instead of /authorize
    (see ``resume_url``), for sign-ins and step-ups that are not authorizations."""
    rid = secrets.token_urlsafe(16)
    clean = {k: v for k, v in params.items() if k != "_rid"}
    record = {"params": clean, "created": time.time(), "bid": browser_id()}
    if next is not None:
        record["next"] = next
    store().set(f"authreq:{rid}", record, current_app.config["AUTH_REQUEST_TTL"])
    return rid


def load(rid: str | None) -> dict[str, Any] | None:
    if not rid or len(rid) > 64:
        return None
    record = store().get(f"authreq:{rid}")
    if record is None or record.get("bid") != session.get("bid"):
        return None
    return record


def update(rid: str, record: dict[str, Any]) -> None:
    ttl = current_app.config["AUTH_REQUEST_TTL"]
    store().set(f"authreq:{rid}", record, ttl)


def finish(rid: str) -> None:
    store().delete(f"authreq:{rid}")


def resume_url(rid: str, record: dict[str, Any]) -> str:
    back = record.get("next")
    # Browsers drop tabs and line breaks inside URLs ("/\t/evil" becomes "//evil"), so
    # any control character disqualifies the path.
    if isinstance(back, str) and back.startswith("/") and not back.startswith(("//", "/\\")) \
            and back.isprintable():
        # A local page waiting for sign-in that is not an authorization request
        # (e.g. /device); only a path on this site, never an open redirect.
        return back
    return url_for("oidc.authorize") + "?" + urlencode({**record["params"], "_rid": rid})
