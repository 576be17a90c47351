"""``idp client list|show|update|disable|enable|delete|rotate-secret``, on the same
service functions as the admin console and its API (:mod:`idp.client_admin`), so a
change made here is audited and validated exactly as one made there.

``idp client add`` lives in :mod:`idp.cli.clients`; both say what kind of client it
is with :func:`idp.cli.client_kind.client_kind`."""

from __future__ import annotations

import json

import click

from .client_kind import client_kind
from .clients import client
from .common import app_context, emit, fail, operator
from .paging import page_note, paging_options


def _fail_lookup(exc: LookupError, as_json: bool):
    fail(str(exc.args[0]) if exc.args else "not found", as_json)


@client.command("list")
@click.option("--status", default=None, type=click.Choice(["active", "disabled", "pending"]))
@click.option("--channel", default=None,
              type=click.Choice(["web", "app", "kiosk", "hall", "hotline"]))
@click.option("--search", "q", default=None, help="Part of the client id or name.")
@click.option("--kind", default=None, type=click.Choice(["relying_party", "admin_api"]),
              help="Relying parties only, or only the admin API's own clients (made by "
                   "administrators for scripts; each shows who made it and its scopes).")
@paging_options
@click.option("--json", "as_json", is_flag=True)
def client_list(status, channel, q, kind, page, per_page, as_json) -> None:
    """Relying parties, newest first, one page at a time."""
    from .. import client_admin

    with app_context():
        rows, total = client_admin.listing(status=status, channel=channel, q=q, kind=kind,
                                           page=page, per_page=per_page)
        items = [{"client_id": c.client_id, "name": c.name, "status": c.status,
                  "channel": c.channel, "protocol": c.meta("protocol", "oidc"),
                  "auth_method": c.token_endpoint_auth_method,
                  "grant_types": list(c.grant_types),
                  "admin_owner": c.meta("admin_owner"),
                  "admin_scopes": list(c.meta("admin_scopes", []))} for c in rows]
    note = page_note(page, per_page, len(items), total, "clients")
    emit({"items": items, "page": page, "per_page": per_page, "total": total,
          "truncated": note.truncated, "next_page": note.next_page}, as_json,
         "\n".join([f"{i['client_id']}\t{i['status']}\t{i['channel']}\t{i['protocol']}"
                    f"\t{i['name']}" + (f"\t{' '.join(i['admin_scopes'])}"
                                        if i["admin_scopes"] else "")
                    for i in items] + [note.text]))


@client.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
def client_show(client_id: str, as_json: bool) -> None:
    """A client's registration (never its secret) and its last day's figures."""
    from dataclasses import asdict

    from .. import client_admin

    with app_context():
        row = client_admin.get(client_id)
        if row is None:
            fail(f"no client {client_id!r}", as_json)
        out = client_admin.describe(row)
        out["kind"] = client_kind(out["grant_types"], out["redirect_uris"])
        out["stats"] = asdict(client_admin.stats(row.client_id))
    emit(out, as_json, "\n".join(f"{k}: {v}" for k, v in out.items()
                                 if v not in (None, [], {})))


@client.command("update")
@click.argument("client_id")
@click.option("--name", default=None)
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Replaces the redirect URIs (repeatable).")
@click.option("--add-redirect-uri", "add_redirect", multiple=True)
@click.option("--remove-redirect-uri", "remove_redirect", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True,
              help="Replaces the post-logout redirect URIs (repeatable).")
@click.option("--backchannel-logout-uri", default=None, help="'' removes it.")
@click.option("--grant-type", "grant_types", multiple=True,
              help="Replaces the grant types (short names as for 'client add').")
@click.option("--allow-scope", "allow_scopes", multiple=True,
              help="Replaces the sensitive scopes (repeatable).")
@click.option("--no-sensitive-scopes", is_flag=True, help="Remove every sensitive scope.")
@click.option("--channel", default=None,
              type=click.Choice(["web", "app", "kiosk", "hall", "hotline"]))
@click.option("--id-token-alg", default=None)
@click.option("--jwks", "jwks_file", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--jwks-uri", default=None, help="'' removes it.")
@click.option("--first-party/--not-first-party", default=None)
@click.option("--profile", default=None, type=click.Choice(["fapi2", "none"]),
              help="Security profile: fapi2 (PAR, PKCE S256, private_key_jwt or mTLS, "
                   "sender-constrained tokens, codes of at most 60 s) or none; checked as "
                   "'client add --profile' is.")
@click.option("--json", "as_json", is_flag=True)
def client_update(client_id, name, redirect_uris, add_redirect, remove_redirect, post_logout,
                  backchannel_logout_uri, grant_types, allow_scopes, no_sensitive_scopes,
                  channel, id_token_alg, jwks_file, jwks_uri, first_party, profile,
                  as_json) -> None:
    """Change a client's registration; checked as a new registration would be."""
    from .. import client_admin
    from ..clients import ClientError
    from ..policy import grant_type

    if redirect_uris and (add_redirect or remove_redirect):
        fail("--redirect-uri replaces the list; do not combine it with --add/--remove",
             as_json)
    if allow_scopes and no_sensitive_scopes:
        fail("--allow-scope and --no-sensitive-scopes exclude each other", as_json)
    changes: dict = {}
    for key, value in (("name", name), ("channel", channel), ("id_token_alg", id_token_alg),
                       ("first_party", first_party)):
        if value is not None:
            changes[key] = value
    for key, value in (("backchannel_logout_uri", backchannel_logout_uri),
                       ("jwks_uri", jwks_uri)):
        if value is not None:
            changes[key] = value or None
    if profile is not None:
        changes["profile"] = None if profile == "none" else profile
    if redirect_uris:
        changes["redirect_uris"] = list(redirect_uris)
    if post_logout:
        changes["post_logout_redirect_uris"] = list(post_logout)
    if grant_types:
        changes["grant_types"] = [grant_type(g) for g in grant_types]
    if allow_scopes or no_sensitive_scopes:
        changes["sensitive_scopes"] = list(allow_scopes)
    if jwks_file:
        try:
            with open(jwks_file, encoding="utf-8") as fh:
                changes["jwks"] = json.load(fh)
        except (OSError, ValueError) as exc:
            fail(f"cannot read --jwks: {exc}", as_json)
    with app_context():
        row = client_admin.get(client_id)
        if row is None:
            fail(f"no client {client_id!r}", as_json)
        if add_redirect or remove_redirect:
            uris = [u for u in row.redirect_uris if u not in remove_redirect]
            missing = [u for u in remove_redirect if u not in row.redirect_uris]
            if missing:
                fail(f"not a redirect URI of {client_id!r}: {', '.join(missing)}", as_json)
            changes["redirect_uris"] = uris + [u for u in add_redirect if u not in uris]
        if not changes:
            fail("nothing to change (see 'idp client update --help')", as_json)
        try:
            row = client_admin.update(client_id, changes, actor=operator())
        except ClientError as exc:
            fail(str(exc), as_json)
        out = client_admin.describe(row)
    emit({"client_id": out["client_id"], "changed": sorted(changes), "client": out}, as_json,
         f"updated {out['client_id']}: {', '.join(sorted(changes))}")


def _status(client_id: str, status: str, reason: str, as_json: bool) -> None:
    from .. import client_admin
    from ..clients import ClientError

    with app_context():
        try:
            row = client_admin.set_status(client_id, status, actor=operator(), reason=reason)
        except LookupError as exc:
            _fail_lookup(exc, as_json)
        except ClientError as exc:
            fail(str(exc), as_json)
        out = {"client_id": row.client_id, "status": row.status}
    emit(out, as_json, f"{out['client_id']}: {out['status']}")


@client.command("disable")
@click.argument("client_id")
@click.option("--reason", default="", help="Kept in the audit log.")
@click.option("--json", "as_json", is_flag=True)
def client_disable(client_id: str, reason: str, as_json: bool) -> None:
    """No more sign-ins or tokens for this client; its refresh tokens are revoked."""
    _status(client_id, "disabled", reason, as_json)


@client.command("enable")
@click.argument("client_id")
@click.option("--reason", default="", help="Kept in the audit log.")
@click.option("--json", "as_json", is_flag=True)
def client_enable(client_id: str, reason: str, as_json: bool) -> None:
    """Let a disabled (or pending) client sign people in again."""
    _status(client_id, "active", reason, as_json)


@client.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Confirm: deleting cannot be undone.")
@click.option("--reason", default="", help="Kept in the audit log.")
@click.option("--json", "as_json", is_flag=True)
def client_delete(client_id: str, yes: bool, reason: str, as_json: bool) -> None:
    """Remove a client for good: its grants are revoked and its consents forgotten."""
    from .. import client_admin
    from ..clients import ClientError

    if not yes:
        fail(f"deleting {client_id!r} cannot be undone; add --yes (or 'idp client disable')",
             as_json)
    with app_context():
        try:
            counts = client_admin.delete(client_id, actor=operator(), reason=reason)
        except LookupError as exc:
            _fail_lookup(exc, as_json)
        except ClientError as exc:
            fail(str(exc), as_json)
    out = {"client_id": client_id, "deleted": True, **counts}
    emit(out, as_json, f"deleted {client_id} (grants revoked {counts['revoked']}, "
                       f"consents removed {counts['consents']})")


@client.command("rotate-secret")
@click.argument("client_id")
@click.option("--grace", "grace_seconds", default=86400, show_default=True,
              type=click.IntRange(0, None),
              help="Seconds the old secret keeps working (0: stops now).")
@click.option("--json", "as_json", is_flag=True)
def client_rotate_secret(client_id: str, grace_seconds: int, as_json: bool) -> None:
    """A new client secret, shown once; the old one works for the grace period."""
    from .. import client_admin
    from ..clients import ClientError

    with app_context():
        try:
            secret, until = client_admin.rotate_secret(client_id, actor=operator(),
                                                       grace_seconds=grace_seconds)
        except LookupError as exc:
            _fail_lookup(exc, as_json)
        except ClientError as exc:
            fail(str(exc), as_json)
    out = {"client_id": client_id, "client_secret": secret, "previous_valid_until": until}
    when = "the old secret stops working now" if until is None else \
        f"the old secret works until {_iso(until)}"
    emit(out, as_json, f"client_secret: {secret}\n{when}")


def _iso(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
