"""The pending request: what a relying party asked for, while the person signs in.

Kept in the short-lived store under a random id (``rid``, the only thing the sign-in
pages carry) and bound to the browser that started it (a random value in its signed UI
cookie), so a ``rid`` copied to another browser is worthless. When the person is done,
the browser goes back to the protocol's own endpoint (``return_to``) and the request is
validated again from scratch: each protocol has one code path that issues.

The record is sealed with SM4-GCM before it is stored: it holds the ``login_hint`` (an
ID number or a phone) and the relying party's parameters, and personal data is never
kept in the clear, not even for fifteen minutes in Redis.

A request lasts ``AUTH_REQUEST_TTL`` from its last step (``expires``, in the record).
The pages say by when (:func:`deadline`) and, shortly before, offer to extend it
(:func:`extend`, by ``AUTH_REQUEST_EXTEND_SECONDS``), never beyond
``AUTH_REQUEST_MAX_AGE`` after it started. The sealed record stays in the store for
:data:`RESTART_GRACE` after it expired — useless to :func:`load` — so that the expired
page can offer to start the relying party's request again (:func:`restart_url`).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app, render_template, request, session
from flask_babel import gettext as _

from .. import ratelimit
from ..authn import assurance
from ..clients import find_client
from ..crypto.fieldcrypt import DecryptionError
from ..store import store

_SEAL_CONTEXT = "authreq"
#: Seconds an expired request's record is kept to offer starting it again.
RESTART_GRACE = 3600


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
    expires: float = 0.0                # when it lapses (0: a record from before expiry)
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
        # Each step gives the person the full time again; it never shortens an extension.
        self.expires = max(self.expires, time.time() + int(current_app.config["AUTH_REQUEST_TTL"]))
        self._store()
        return self.id

    def _store(self) -> None:
        left = max(1, int(self.expires - time.time()) + 1)
        store().set(_key(self.id), _seal(self), left + RESTART_GRACE)

    @property
    def lapsed(self) -> bool:
        return bool(self.expires) and time.time() >= self.expires

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


def _load_any(rid: str | None) -> PendingRequest | None:
    """The request ``rid`` of this browser, lapsed or not."""
    if not isinstance(rid, str) or not rid or len(rid) > 64:
        return None
    req = _unseal(store().get(_key(rid)))
    if req is None or not req.bid or req.bid != session.get("bid"):
        return None
    req.id = rid
    return req


def load(rid: str | None) -> PendingRequest | None:
    """The pending request ``rid`` of this browser, or None (unknown, expired, or started
    in another browser)."""
    req = _load_any(rid)
    return None if req is None or req.lapsed else req


# -- how long the person has ------------------------------------------------------------


def max_expiry(req: PendingRequest) -> float:
    return req.created + int(current_app.config["AUTH_REQUEST_MAX_AGE"])


def extend(req: PendingRequest) -> bool:
    """Give the (live) request ``AUTH_REQUEST_EXTEND_SECONDS`` from now, never past
    ``AUTH_REQUEST_MAX_AGE`` after it started; re-sealed. False when it is already at
    that limit (nothing changed)."""
    cfg = current_app.config
    until = min(time.time() + int(cfg["AUTH_REQUEST_EXTEND_SECONDS"]), max_expiry(req))
    if until <= req.expires:
        return False
    req.expires = until
    req._store()
    return True


def restart_url(req: PendingRequest) -> str | None:
    """Where starting this request again begins: the protocol's own endpoint with the
    relying party's original parameters (without ``_rid``), so the relying party gets
    its answer as if nothing had lapsed; a local request's page. None when the request
    cannot be made again (a pushed request_uri is used once, a SAML request by its id)."""
    if req.protocol == "local":
        back = req.next
        ok = isinstance(back, str) and back.startswith("/") \
            and not back.startswith(("//", "/\\")) and back.isprintable()
        return back if ok else None
    if req.protocol not in _RESUME:
        return None
    parts = urlsplit(_RESUME[req.protocol](req))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "_rid"]
    if not query or any(k == "request_uri" for k, _v in query) or parts.netloc:
        return None
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def local(*, next: str, acr_values: str | None = None) -> PendingRequest:  # noqa: A002
    """A request without a relying party: a sign-in or step-up that returns to one of
    our own pages (``next``), e.g. the device-code page or the account's security page."""
    req = PendingRequest(protocol="local", acr_values=acr_values, next=next)
    req.save()
    return req


def expired_page(rid: Any = None):
    """The answer of a page whose request lapsed (or never was): what happened, and a way
    to start again — back to the relying party's request where it can be made again."""
    rid = rid if rid is not None else request.values.get("rid")
    req = _load_any(rid if isinstance(rid, str) else None)
    restart = restart_url(req) if req is not None else None
    client = req.client if req is not None else None
    return render_template("request_expired.html", title=_("登录请求已过期"),
                           restart=restart, client=client, lapsed=req is not None,
                           local=req is not None and req.protocol == "local"), 400


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
