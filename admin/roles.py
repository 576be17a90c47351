"""Who may do what in the admin console: roles, what each permits, and granting them.

Separation of duties as MLPS level 3 asks (等保三级 三员分立):

- ``system_admin`` (系统管理员): relying parties, signing keys, configuration;
- ``security_admin`` (安全管理员): people, their authenticators and locks, and roles;
- ``audit_admin`` (审计管理员): reads and exports the audit log and verifies its chain,
  nothing else;
- ``reviewer`` (审核员) decides legacy-account review items; ``admin`` (审核管理员) may
  also merge two persons, force a merge and undo person merges.

The three separated roles exclude each other: one person holds at most one of them. No
one can grant a role to themselves (a security administrator grants roles to others;
the first ones come from ``idp admin grant`` on the server). Every grant and revocation
is audited. An API client acts for the person who created it, with at most that
person's permissions, narrowed to the ``admin:*`` scopes of its token
(:func:`permissions_for_scopes`).
"""

from __future__ import annotations

import time

from idp import audit
from idp.accounts import person_by_identifier
from idp.extensions import db
from idp.identity import InvalidIdNumber
from idp.models import ADMIN_ROLES, AdminRole, Person

SEPARATED = ("system_admin", "security_admin", "audit_admin")

PERMISSIONS: dict[str, frozenset[str]] = {
    "reviewer": frozenset({"review.read", "review.decide", "dashboard.read",
                           "api_clients.own"}),
    "admin": frozenset({"review.read", "review.decide", "review.merge", "dashboard.read",
                        "api_clients.own"}),
    "system_admin": frozenset({"clients.read", "clients.write", "keys.read", "keys.write",
                               "dashboard.read", "api_clients.own"}),
    "security_admin": frozenset({"people.read", "people.write", "people.reveal",
                                 "roles.read", "roles.write", "dashboard.read",
                                 "api_clients.own"}),
    "audit_admin": frozenset({"audit.read", "audit.export", "audit.verify",
                              "api_clients.own"}),
}

# What each admin:* scope of an API client's token opens (a prefix of permissions).
SCOPES: dict[str, tuple[str, ...]] = {
    "admin:review": ("review.",), "admin:clients": ("clients.",), "admin:keys": ("keys.",),
    "admin:people": ("people.", "roles."), "admin:audit": ("audit.",),
    "admin:dashboard": ("dashboard.",),
    # Listing the owner's own API clients (every role may make them; making one stays a
    # person's act in a session).
    "admin:api-clients": ("api_clients.",),
}


class RoleError(ValueError):
    pass


def permissions(held: set[str]) -> frozenset[str]:
    return frozenset().union(*(PERMISSIONS.get(r, frozenset()) for r in held))


def scopes_for(held: set[str]) -> list[str]:
    """The admin:* scopes an API client made by a holder of ``held`` may carry."""
    perms = permissions(held)
    return sorted(s for s, prefixes in SCOPES.items()
                  if any(p.startswith(prefixes) for p in perms))


def permissions_for_scopes(held: set[str], scopes: set[str]) -> frozenset[str]:
    prefixes = tuple(p for s in scopes for p in SCOPES.get(s, ()))
    if not prefixes:
        return frozenset()
    return frozenset(p for p in permissions(held) if p.startswith(prefixes))


def _holder(id_number: str) -> Person | None:
    """Roles are granted by ID number only (a phone may change hands)."""
    try:
        return person_by_identifier(id_number, phone=False).person
    except InvalidIdNumber as exc:
        raise RoleError(f"invalid ID number: {exc.message_en}") from None


def roles_of(person_id: str) -> set[str]:
    return set(db.session.scalars(db.select(AdminRole.role).where(
        AdminRole.person_id == person_id)))


def _check_grant(person: Person, role: str, by_person: str | None) -> None:
    if role not in ADMIN_ROLES:
        raise RoleError(f"role must be one of {', '.join(ADMIN_ROLES)}")
    if person.status != "active":
        raise RoleError("no active person with this ID number")
    if by_person is not None and by_person == person.id:
        raise RoleError("nobody may grant a role to themselves")
    if role in SEPARATED:
        other = roles_of(person.id) & (set(SEPARATED) - {role})
        if other:
            raise RoleError(f"separation of duties: this person already holds "
                            f"{', '.join(sorted(other))}; {role} must be someone else")


def grant_to(person: Person, role: str, *, by: str, by_person: str | None = None
             ) -> AdminRole:
    """Grant ``role``; ``by_person``: the console's administrator (refused for
    themselves), None from the server's command line."""
    _check_grant(person, role, by_person)
    row = db.session.get(AdminRole, (person.id, role))
    if row is None:
        row = AdminRole(person_id=person.id, role=role, granted_by=by, granted_at=time.time())
        db.session.add(row)
        db.session.commit()
        audit.record("admin.role_granted", actor=by, subject=person.id, details={"role": role})
    return row


def grant(id_number: str, role: str, *, by: str, by_person: str | None = None) -> AdminRole:
    if role not in ADMIN_ROLES:
        raise RoleError(f"role must be one of {', '.join(ADMIN_ROLES)}")
    person = _holder(id_number)
    if person is None:
        raise RoleError("no active person with this ID number")
    return grant_to(person, role, by=by, by_person=by_person)


def revoke_from(person: Person, role: str | None, *, by: str,
                by_person: str | None = None) -> list[str]:
    """Remove ``role`` (every role when None); the roles removed."""
    if by_person is not None and by_person == person.id:
        raise RoleError("nobody may change their own roles")
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


def revoke(id_number: str, role: str | None, *, by: str) -> list[str]:
    person = _holder(id_number)
    if person is None:
        raise RoleError("no person with this ID number")
    return revoke_from(person, role, by=by)


def listing() -> list[tuple[AdminRole, Person | None]]:
    rows = list(db.session.scalars(db.select(AdminRole).order_by(AdminRole.granted_at)))
    people = {p.id: p for p in db.session.scalars(db.select(Person).where(
        Person.id.in_({r.person_id for r in rows})))} if rows else {}
    return [(r, people.get(r.person_id)) for r in rows]
