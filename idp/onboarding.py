"""Reviewing applications to use the platform (dynamic client registration,
:mod:`idp.oidc.registration`): approve (上线) or reject.

Approval makes the client ``active``. What a registration asked for that widens access
is granted only when the approver says so explicitly: the sensitive scopes it asked
for (``grant_sensitive``) and a channel other than web/app (``grant_channel``);
otherwise the client goes live without them and the request stays on record. A
rejection removes the application (its registration access token dies with it). The
console, the admin API and ``idp client approve|reject`` call these; each is audited
with the approver as actor.
"""

from __future__ import annotations

from typing import Any

from . import audit, client_admin
from .clients import ClientError, forget_client
from .extensions import db
from .models import Client


def _pending(client_id: str) -> Client:
    client = client_admin.get(client_id)
    if client is None:
        raise LookupError(f"no client {client_id!r}")
    if client.status != "pending":
        raise ClientError(f"client {client_id!r} is not awaiting approval ({client.status})")
    return client


def requested(client: Client) -> dict[str, Any]:
    """What the registration asked for beyond the basics (for the reviewer)."""
    reg = client.meta("registration") or {}
    return {"sensitive_scopes": reg.get("requested_sensitive_scopes") or [],
            "channel": reg.get("requested_channel") or client.channel,
            "profile": client.meta("profile"), "note": reg.get("initial_token_note", "")}


def pending_clients() -> list[Client]:
    return list(db.session.scalars(db.select(Client).where(Client.status == "pending")
                                   .order_by(Client.created_at)))


def approve_client(client_id: str, *, actor: str, grant_sensitive: bool = False,
                   grant_channel: bool = False, reason: str = "") -> Client:
    client = _pending(client_id)
    asked = requested(client)
    granted_scopes = list(asked["sensitive_scopes"]) if grant_sensitive else []
    if granted_scopes:
        client.allowed_sensitive_scopes = sorted(set(client.allowed_sensitive_scopes or [])
                                                 | set(granted_scopes))
    channel = asked["channel"] if grant_channel else client.channel
    if channel != client.channel:
        from .policy import forbidden_grants

        problem = forbidden_grants(channel, client.grant_types)
        if problem:
            raise ClientError(problem)
        client.channel = channel
    db.session.commit()
    forget_client(client.client_id)
    client_admin.set_status(client.client_id, "active", actor=actor, reason=reason)
    audit.record("client.approved", actor=actor, client_id=client.client_id,
                 details={"granted_sensitive_scopes": granted_scopes, "channel": channel,
                          "requested": asked, "reason": reason[:500]})
    return client


def reject_client(client_id: str, *, actor: str, reason: str = "") -> None:
    client = _pending(client_id)
    audit.record("client.rejected", actor=actor, client_id=client.client_id,
                 details={"requested": requested(client), "reason": reason[:500]})
    client_admin.delete(client.client_id, actor=actor, reason=f"registration rejected: {reason}")
