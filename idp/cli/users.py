"""``idp user add``."""

from __future__ import annotations

import click

from .. import audit
from .common import app_context, emit, fail, operator


@click.group()
def user() -> None:
    """Citizen accounts."""


@user.command("add")
@click.option("--id-number", required=True, help="Citizen ID number (GB 11643), any usual form.")
@click.option("--name", required=True)
@click.option("--password", required=True)
@click.option("--phone", default=None)
@click.option("--json", "as_json", is_flag=True)
def user_add(id_number: str, name: str, password: str, phone: str | None, as_json: bool) -> None:
    from ..accounts import AccountError, create_person
    from ..identity.masking import mask_id_number

    with app_context():
        try:
            person = create_person(id_number, name, password, phone)
        except AccountError as exc:
            fail(str(exc), as_json)
        audit.record("admin.user.add", actor=operator(), subject=person.id,
                     details={"id_kind": person.id_kind})
        out = {"id": person.id, "id_number": mask_id_number(person.id_number),
               "id_kind": person.id_kind, "phone": bool(person.phone)}
    emit(out, as_json, f"created person {out['id']} ({out['id_number']})")
