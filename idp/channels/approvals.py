"""Requests a person approves or denies on their signed-in mobile app.

One mechanism for every "approve it on your phone" path: a QR code scanned from a
website or kiosk, and a service-hall or hotline request (CIBA). A request lives in the
shared store, so any worker can create, show, decide and poll it:

- ``create`` makes it, for a known person (CIBA) or not yet bound to anyone (QR);
- ``bind`` gives an unbound request to the person whose app scanned it — once only,
  so a QR code photographed by someone else is worthless after the first scan;
- ``pending_for`` lists what waits on a person's app;
- ``decide`` records approve/deny once, with how strongly the app's session was
  authenticated; the party that started it polls ``get`` for the outcome.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..store import store

KINDS = ("qr", "ciba")


@dataclass
class Approval:
    id: str
    kind: str
    client_id: str
    created: float
    expires: float
    person_id: str | None = None
    state: str = "pending"  # pending | approved | denied
    binding_message: str | None = None
    scope: str = ""
    acr_asked: str | None = None
    # Set by decide(): how the approving app's session was authenticated.
    amr: list[str] = field(default_factory=list)
    acr: str | None = None
    decided_at: float | None = None
    # Free-form details for the channel that made it (e.g. the clerk for ``act``).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires

    def public(self) -> dict[str, Any]:
        """What the app may show: no person id, no internal extras."""
        return {"id": self.id, "kind": self.kind, "client_id": self.client_id,
                "binding_message": self.binding_message, "scope": self.scope,
                "acr_asked": self.acr_asked, "state": self.state,
                "expires_in": max(0, int(self.expires - time.time())),
                "client_name": self.extra.get("client_name"), **self._origin()}

    def _origin(self) -> dict[str, Any]:
        """For a QR code: where the sign-in it approves would happen (the browser that
        showed the code), so the person can tell their own screen from someone else's."""
        if self.kind != "qr":
            return {}
        return {"network": self.extra.get("network_shown"), "device": self.extra.get("device"),
                "different_network": bool(self.extra.get("different_network"))}


def _key(aid: str) -> str:
    return f"approval:{aid}"


def _save(a: Approval) -> None:
    store().set(_key(a.id), asdict(a), max(1.0, a.expires - time.time()) + 60)


def create(kind: str, client_id: str, *, ttl: int, person_id: str | None = None,
           binding_message: str | None = None, scope: str = "", acr_asked: str | None = None,
           extra: dict[str, Any] | None = None) -> Approval:
    if kind not in KINDS:
        raise ValueError(f"unknown approval kind {kind!r}")
    now = time.time()
    a = Approval(id=secrets.token_urlsafe(24), kind=kind, client_id=client_id, created=now,
                 expires=now + ttl, person_id=person_id, binding_message=binding_message,
                 scope=scope, acr_asked=acr_asked, extra=dict(extra or {}))
    _save(a)
    if person_id:
        store().append(f"approvals:{person_id}", a.id, ttl + 60)
    return a


def get(aid: str | None) -> Approval | None:
    if not aid or len(aid) > 64:
        return None
    data = store().get(_key(aid))
    return Approval(**data) if data else None


def bind(aid: str, person_id: str, *, extra: dict[str, Any] | None = None) -> Approval | None:
    """Give an unbound request to ``person_id`` (adding ``extra``, what the binding
    learned). None if it is unknown, expired or was bound before (by anyone: the first
    scan wins, later scans learn nothing)."""
    a = get(aid)
    if a is None or a.expired or a.person_id is not None or a.state != "pending":
        return None
    if not store().add(f"approval_bound:{aid}", person_id, max(1.0, a.expires - time.time())):
        return None
    a.person_id = person_id
    a.extra.update(extra or {})
    _save(a)
    store().append(f"approvals:{person_id}", a.id, max(1, int(a.expires - time.time())) + 60)
    return a


def pending_for(person_id: str) -> list[Approval]:
    out = []
    for aid in store().members(f"approvals:{person_id}"):
        a = get(aid)
        if a is not None and a.person_id == person_id and a.state == "pending" and not a.expired:
            out.append(a)
    out.sort(key=lambda a: a.created)
    # A browser shows one QR code at a time: a newer scan from the same browser replaces
    # the older one, which that screen no longer shows (the app listed both before).
    newest = {a.extra.get("browser"): a.id for a in out if a.kind == "qr"}
    return [a for a in out if a.kind != "qr" or newest.get(a.extra.get("browser")) == a.id]


# What happens when a request of a kind is decided (e.g. CIBA ping mode notifies the
# client): registered by the kind's own module, so this one imports none of them.
_ON_DECIDED: dict[str, Any] = {}


def on_decided(kind: str, listener) -> None:
    _ON_DECIDED[kind] = listener


def decide(aid: str, person_id: str, approve: bool, *, amr: list[str],
           acr: str | None) -> Approval | None:
    """Approve or deny once. None if the request is not this person's, expired, or
    already decided (a second decision — a replayed or raced tap — changes nothing)."""
    a = get(aid)
    if a is None or a.person_id != person_id or a.expired or a.state != "pending":
        return None
    if not store().add(f"approval_decided:{aid}", 1, max(1.0, a.expires - time.time()) + 60):
        return None
    a.state = "approved" if approve else "denied"
    a.amr = list(amr)
    a.acr = acr
    a.decided_at = time.time()
    _save(a)
    if a.kind in _ON_DECIDED:
        _ON_DECIDED[a.kind](a)
    return a


def consume(aid: str) -> Approval | None:
    """Take an approved request for the one exchange it allows (a code, a session, a
    token response); None if not approved or already consumed."""
    a = get(aid)
    if a is None or a.state != "approved" or a.expired:
        return None
    if not store().add(f"approval_used:{aid}", 1, max(1.0, a.expires - time.time()) + 60):
        return None
    return a


def withdraw(aid: str) -> None:
    """Remove a request its maker may not keep (e.g. over a limit), before anyone acts
    on it; the person's list skips ids it can no longer find."""
    store().delete(_key(aid))
