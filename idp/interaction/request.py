"""The pending request: what a relying party asked for, while the person signs in.

Kept in the short-lived store under a random id (``rid``, the only thing the sign-in
pages carry) and bound to the browser that started it (a random value in its signed UI
cookie), so a ``rid`` copied to another browser is worthless. When the person is done,
the browser goes back to the protocol's own endpoint (``return_to``) and the request is
validated again from scratch: each protocol has one code path that issues.

The record is sealed with SM4-GCM before it is stored: it holds the ``login_hint`` (an
ID number or a phone) and the relying party's parameters, and personal data is never
kept in the clear, not even for fifteen minutes in Redis.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from flask import current_app, render_template, request, session
from flask_babel import gettext as _

from .. import ratelimit
from ..authn import assurance
from ..clients import find_client
from ..crypto.fieldcrypt import DecryptionError
from ..store import store

_SEAL_CONTEXT = "authreq"


class TooManyRequests(Exception):
    """This address has started more sign-ins in the last minute than the limit allows."""


def browser_id() -> str:
    if "bid" not in session:
        session["bid"] = secrets.token_urlsafe(16)
    return session["bid"]


@dataclass
class PendingRequest:
    # What the relying party asked (set when the request starts, never changed).
    protocol: str                       # "oidc", "cas", "saml"; "local" for an own page
    client_id: str | None = None
    scopes: list[str] = field(default_factory=list)
    claims: dict[str, Any] | None = None
    prompt: list[str] = field(default_factory=list)
    max_age: int | None = None
    acr_values: str | None = None
    login_hint: str | None = None
    org_hint: str | None = None         # the organisation (USCC) to act for, if named
    channel: str = "web"
    params: dict[str, str] = field(default_factory=dict)  # the protocol's own, to resume
    next: str | None = None             # a local page to return to instead
    # Bookkeeping.
    id: str = ""
    created: float = 0.0
    bid: str = ""
    # What the person decided on the way (written by the interaction pages).
    consented: bool = False
    claims_declined: list[str] = field(default_factory=list)  # claims asked by name, refused
    denied: bool = False
    unmet: bool = False
    membership_id: str | None = None

    @property
    def stored(self) -> bool:
        return bool(self.id)

    @property
    def asked_level(self) -> str | None:
        return assurance.required_level(self.acr_values)

    @cached_property
    def client(self):
        return find_client(self.client_id) if self.client_id else None

    # -- persistence ---------------------------------------------------------------
    def save(self) -> str:
        """Store (first time: create) the record; returns its id."""
        if not self.id:
            cfg = current_app.config
            # Every anonymous request could otherwise leave a 15-minute record behind.
            if ratelimit.exceeded("authreq", int(cfg["AUTH_REQUESTS_PER_MINUTE"]), 60):
                raise TooManyRequests()
            self.id = secrets.token_urlsafe(16)
            self.created = time.time()
            self.bid = browser_id()
        store().set(_key(self.id), _seal(self), current_app.config["AUTH_REQUEST_TTL"])
        return self.id

    def finish(self) -> None:
        if self.id:
            store().delete(_key(self.id))

    def resume_url(self) -> str:
        """Where the browser goes when a page of the interaction is done."""
        back = self.next
        # Browsers drop tabs and line breaks inside URLs ("/\t/evil" becomes "//evil"),
        # so any control character disqualifies the path.
        if isinstance(back, str) and back.startswith("/") \
                and not back.startswith(("//", "/\\")) and back.isprintable():
            return back
        return _RESUME[self.protocol](self)


def _key(rid: str) -> str:
    return f"authreq:{rid}"


def _crypto():
    return current_app.extensions["idp.fieldcrypto"]


def _seal(req: PendingRequest) -> dict[str, str]:
    data = {f.name: getattr(req, f.name) for f in fields(req)}
    return {"sealed": _crypto().encrypt(json.dumps(data, separators=(",", ":")),
                                        _SEAL_CONTEXT)}


def _unseal(record: Any) -> PendingRequest | None:
    if not isinstance(record, dict) or not isinstance(record.get("sealed"), str):
        return None
    try:
        data = json.loads(_crypto().decrypt(record["sealed"], _SEAL_CONTEXT))
    except (DecryptionError, ValueError):
        return None
    known = {f.name for f in fields(PendingRequest)}
    return PendingRequest(**{k: v for k, v in data.items() if k in known})


def load(rid: str | None) -> PendingRequest | None:
    """The pending request ``rid`` of this browser, or None (unknown, expired, or started
    in another browser)."""
    if not isinstance(rid, str) or not rid or len(rid) > 64:
        return None
    req = _unseal(store().get(_key(rid)))
    if req is None or req.bid != session.get("bid"):
        return None
    req.id = rid
    return req


def local(*, next: str, acr_values: str | None = None) -> PendingRequest:  # noqa: A002
    """A request without a relying party: a sign-in or step-up that returns to one of
    our own pages (``next``), e.g. the device-code page or the account's security page."""
    req = PendingRequest(protocol="local", acr_values=acr_values, next=next)
    req.save()
    return req


def expired_page():
    return render_template("error.html", title=_("登录请求已过期"),
                           detail=_("请回到原网站重新点击登录。")), 400


def from_page() -> tuple[PendingRequest | None, Any]:
    """The request (``rid``) a sign-in page serves: ``(request, None)``, the request None
    for a sign-in without one; or ``(None, expired page)`` when ``rid`` names no request
    (any more)."""
    rid = request.values.get("rid") or None
    req = load(rid)
    if rid and req is None:
        return None, expired_page()
    return req, None


def as_dict(req: PendingRequest) -> dict[str, Any]:
    return asdict(req)


# How each protocol resumes: the adapter's endpoint with the original parameters and
# ``_rid``. Registered by the adapters (``register_resume``) so this module does not
# import them.
_RESUME: dict[str, Any] = {}


def register_resume(protocol: str, build) -> None:
    _RESUME[protocol] = build


def _resume_local(req: PendingRequest) -> str:
    return "/"


register_resume("local", _resume_local)


def query_with_rid(path: str, req: PendingRequest) -> str:
    return path + "?" + urlencode({**req.params, "_rid": req.id})
