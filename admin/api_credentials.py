"""Admin API clients: the confidential client-credentials clients through which scripts
use the admin REST API. Each administrator makes their own (console page
``/admin/api-clients`` or ``POST /admin/api/api-clients``); one acts for the person who
made it (``admin_owner``), with at most that person's permissions, narrowed to the
``admin:*`` scopes it was made with (:func:`admin.roles.scopes_for`). The console page,
the API and ``idp client list --kind admin_api`` list them through this module and
:func:`idp.client_admin.listing`; a system administrator sees everyone's (they are
clients), each administrator their own.
"""

from __future__ import annotations

import secrets
from typing import Any

from idp import audit, client_admin
from idp.clients import ClientError, forget_client, register_client
from idp.extensions import db
from idp.models import Client

from . import roles

ID_PREFIX = "admin-api-"
# How many of one administrator's own API clients the console page shows.
MAX_OWN = 200


def create(name: str, scopes: list[str], *, owner: str, held: set[str]
           ) -> tuple[Client, str]:
    """A confidential client-credentials client that acts for ``owner``: (client,
    secret shown once). Its scopes must be ones the owner's roles open."""
    allowed = set(roles.scopes_for(held))
    if not scopes:
        raise ClientError("choose at least one admin:* scope")
    if not set(scopes) <= allowed:
        raise ClientError("your roles do not open: " + ", ".join(sorted(set(scopes) - allowed)))
    secret = secrets.token_urlsafe(32)
    row = register_client(client_id=ID_PREFIX + secrets.token_hex(6), name=name,
                          secret=secret, auth_method="client_secret_basic", redirect_uris=[],
                          grant_types=["client_credentials"], post_logout_redirect_uris=[],
                          backchannel_logout_uri=None, first_party=True, sensitive_scopes=[],
                          channel="web", jwks=None, id_token_alg=None)
    row.client_metadata = {**row.client_metadata, "scope": " ".join(sorted(scopes)),
                           "admin_owner": owner, "admin_scopes": sorted(scopes)}
    db.session.commit()
    forget_client(row.client_id)
    audit.record("admin.api_client.created", actor=owner, client_id=row.client_id,
                 details={"scopes": sorted(scopes)})
    return row, secret


def owned_by(owner: str, *, status: str | None = None, page: int = 1,
             per_page: int = MAX_OWN) -> tuple[list[Client], int]:
    """One administrator's API clients, newest first, and how many in all."""
    return client_admin.listing(kind="admin_api", owner=owner, status=status, page=page,
                                per_page=per_page)


def describe(client: Client) -> dict[str, Any]:
    """What is shown of an admin API client (never its secret)."""
    info = client_admin.describe(client)
    return {"client_id": info["client_id"], "name": info["name"], "status": info["status"],
            "owner": info["admin_owner"], "scopes": info["admin_scopes"],
            "has_secret": info["has_secret"],
            "previous_secret_valid_until": info["previous_secret_valid_until"],
            "created_at": info["created_at"]}
