"""``idp admin grant|revoke|list``: who may use the admin console."""

from __future__ import annotations

import click

from idp.cli.common import app_context, emit, fail, operator
from idp.models import ADMIN_ROLES


@click.group("admin")
def admin_group() -> None:
    """Administrators of the admin console (/admin)."""


@admin_group.command("grant")
@click.argument("id_number")
@click.option("--role", required=True, type=click.Choice(ADMIN_ROLES))
@click.option("--json", "as_json", is_flag=True)
def grant(id_number: str, role: str, as_json: bool) -> None:
    from . import roles

    with app_context():
        try:
            row = roles.grant(id_number, role, by=operator())
        except roles.RoleError as exc:
            fail(str(exc), as_json)
        out = {"person_id": row.person_id, "role": row.role}
    emit(out, as_json, f"granted {out['role']} to person {out['person_id']}")


@admin_group.command("revoke")
@click.argument("id_number")
@click.option("--role", default=None, type=click.Choice(ADMIN_ROLES),
              help="Only this role (default: every role).")
@click.option("--json", "as_json", is_flag=True)
def revoke(id_number: str, role: str | None, as_json: bool) -> None:
    from . import roles

    with app_context():
        try:
            removed = roles.revoke(id_number, role, by=operator())
        except roles.RoleError as exc:
            fail(str(exc), as_json)
    emit({"revoked": removed}, as_json, "revoked: " + (", ".join(removed) or "nothing"))


@admin_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_roles(as_json: bool) -> None:
    from idp.identity.masking import mask_id_number, mask_name

    from . import roles

    with app_context():
        out = [{"person_id": r.person_id, "role": r.role, "granted_by": r.granted_by,
                "granted_at": r.granted_at,
                "name": mask_name(p.name) if p else None,
                "id_number": mask_id_number(p.id_number) if p else None}
               for r, p in roles.listing()]
    emit(out, as_json, "\n".join(f"{o['person_id']}\t{o['role']}\t{o['name']}\t{o['id_number']}"
                                 for o in out) or "(none)")
