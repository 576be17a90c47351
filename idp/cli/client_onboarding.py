"""``idp client initial-token | pending | approve | reject``: the operator's side of
dynamic client registration (idp.oidc.registration, idp.onboarding)."""

from __future__ import annotations

import click

from .clients import client
from .common import app_context, emit, fail, operator


@client.command("initial-token")
@click.option("--note", default="", help="Whom the token is for (kept in the audit log).")
@click.option("--ttl", type=click.IntRange(60, 90 * 86400), default=None,
              help="Seconds the token stays valid (default REGISTRATION_INITIAL_TOKEN_TTL).")
@click.option("--json", "as_json", is_flag=True)
def client_initial_token(note: str, ttl: int | None, as_json: bool) -> None:
    """An initial access token for one registration at /connect/register (shown once)."""
    from ..oidc.registration import issue_initial_token

    with app_context():
        out = issue_initial_token(actor=operator(), note=note, ttl=ttl)
    emit(out, as_json, f"initial access token (single use, {out['expires_in']} s): "
                       f"{out['initial_access_token']}")


@client.command("pending")
@click.option("--json", "as_json", is_flag=True)
def client_pending(as_json: bool) -> None:
    """Registrations awaiting approval, with what each asked for."""
    from ..onboarding import pending_clients, requested

    with app_context():
        rows = [{"client_id": c.client_id, "name": c.name, "redirect_uris": c.redirect_uris,
                 "requested": requested(c)} for c in pending_clients()]
    emit({"items": rows, "total": len(rows)}, as_json,
         "\n".join(f"{r['client_id']}  {r['name']}  {r['requested']}" for r in rows)
         or "no registrations awaiting approval")


@client.command("approve")
@click.argument("client_id")
@click.option("--grant-sensitive", is_flag=True,
              help="Also grant the sensitive scopes (idcard) the registration asked for.")
@click.option("--grant-channel", is_flag=True,
              help="Also grant the channel (kiosk, hall, hotline) the registration asked for.")
@click.option("--reason", default="", help="Kept in the audit log.")
@click.option("--json", "as_json", is_flag=True)
def client_approve(client_id: str, grant_sensitive: bool, grant_channel: bool, reason: str,
                   as_json: bool) -> None:
    """Put a pending registration live (上线)."""
    from ..clients import ClientError
    from ..onboarding import approve_client

    with app_context():
        try:
            row = approve_client(client_id, actor=operator(), grant_sensitive=grant_sensitive,
                                 grant_channel=grant_channel, reason=reason)
        except (LookupError, ClientError) as exc:
            fail(str(exc).strip("'\""), as_json)
        out = {"client_id": row.client_id, "status": row.status, "channel": row.channel,
               "sensitive_scopes": list(row.allowed_sensitive_scopes or [])}
    emit(out, as_json, f"{out['client_id']}: {out['status']}")


@client.command("reject")
@click.argument("client_id")
@click.option("--reason", default="", help="Kept in the audit log.")
@click.option("--json", "as_json", is_flag=True)
def client_reject(client_id: str, reason: str, as_json: bool) -> None:
    """Refuse a pending registration (it is removed)."""
    from ..clients import ClientError
    from ..onboarding import reject_client

    with app_context():
        try:
            reject_client(client_id, actor=operator(), reason=reason)
        except (LookupError, ClientError) as exc:
            fail(str(exc).strip("'\""), as_json)
    emit({"client_id": client_id, "status": "rejected"}, as_json, f"{client_id}: rejected")
