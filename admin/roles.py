"""Who may use the admin console: people holding an ``admin_role`` row.

``reviewer`` decides review items (approve, reject, link to a person, undo);
``admin`` may also merge two persons, force a merge of differing ID numbers, and undo
person merges. Roles are granted and revoked from the command line only, so that the
console cannot be used to widen its own access.
"""

from __future__ import annotations

import time

from idp import audit
from idp.accounts import person_by_identifier
from idp.extensions import db
from idp.identity import InvalidIdNumber
from idp.models import ADMIN_ROLES, AdminRole, Person


class RoleError(ValueError):
    pass


def _holder(id_number: str) -> Person | None:
    """Roles are granted by ID number only (a phone may change hands)."""
    try:
        return person_by_identifier(id_number, phone=False).person
    except InvalidIdNumber as exc:
        raise RoleError(f"invalid ID number: {exc.message_en}") from None


def roles_of(person_id: str) -> set[str]:
    return set(db.session.scalars(db.select(AdminRole.role).where(
        AdminRole.person_id == person_id)))


def grant(id_number: str, role: str, *, by: str) -> AdminRole:
    if role not in ADMIN_ROLES:
        raise RoleError(f"role must be one of {', '.join(ADMIN_ROLES)}")
    person = _holder(id_number)
    if person is None or person.status != "active":
        raise RoleError("no active person with this ID number")
    row = db.session.get(AdminRole, (person.id, role))
    if row is None:
        row = AdminRole(person_id=person.id, role=role, granted_by=by, granted_at=time.time())
        db.session.add(row)
        db.session.commit()
        audit.record("admin.role_granted", actor=by, subject=person.id, details={"role": role})
    return row


def revoke(id_number: str, role: str | None, *, by: str) -> list[str]:
    """Remove ``role`` (every role when None); the roles removed."""
    person = _holder(id_number)
    if person is None:
        raise RoleError("no person with this ID number")
    query = db.select(AdminRole).where(AdminRole.person_id == person.id)
    if role:
        query = query.where(AdminRole.role == role)
    rows = list(db.session.scalars(query))
    for row in rows:
        db.session.delete(row)
    db.session.commit()
    removed = sorted(r.role for r in rows)
    if removed:
        audit.record("admin.role_revoked", actor=by, subject=person.id,
                     details={"roles": removed})
    return removed


def listing() -> list[tuple[AdminRole, Person | None]]:
    rows = list(db.session.scalars(db.select(AdminRole).order_by(AdminRole.granted_at)))
    people = {p.id: p for p in db.session.scalars(db.select(Person).where(
        Person.id.in_({r.person_id for r in rows})))} if rows else {}
    return [(r, people.get(r.person_id)) for r in rows]
