"""Organisations and the people who act for them.

An enterprise is known by its unified social credit code (GB 32100) and never signs in
itself: its legal representative (from registration), administrators and authorised
agents (经办人) act for it through memberships with business scopes and a validity
period. Registration, appointment and revocation all go through this module, whether
they come from the CLI, the enterprise pages or (later) a legacy import.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from . import audit
from .accounts import person_by_identifier
from .extensions import db
from .identity import InvalidCreditCode, InvalidIdNumber, parse_credit_code, parse_person_id
from .models import Membership, Organisation, Person, RefreshToken
from .revocation import revoke_grant

BUSINESS_SCOPES = ("all", "tax", "social-security", "customs", "market-regulation", "housing")
ROLE_NAMES = {"legal_rep": "法定代表人", "admin": "管理员", "agent": "经办人"}
ROLE_NAMES_EN = {"legal_rep": "legal representative", "admin": "administrator",
                 "agent": "authorised agent"}


class OrgError(ValueError):
    """A refusal with a message fit for the person or operator who asked."""


@dataclass(frozen=True)
class RegistryRecord:
    uscc: str
    name: str
    org_type: str
    # The registered legal representative (normalised ID number, name), when the register
    # tells it: enterprise self-registration (idp.account.enterprise_registration) lets
    # only that person complete it without review.
    legal_rep_id_number: str | None = None
    legal_rep_name: str | None = None


class OrgRegistry(Protocol):
    """Where the platform learns an organisation's registered name (the market-regulation
    or legal-entity register in production)."""

    def lookup(self, uscc: str) -> RegistryRecord | None: ...


class NoRegistry:
    """Development default: nothing is looked up; the operator supplies the name."""

    def lookup(self, uscc: str) -> RegistryRecord | None:
        return None


def registry() -> OrgRegistry:
    """The configured registry (``IDP_ORG_REGISTRY=package.module:ClassName``), made once
    per app; ``NoRegistry`` when none is configured."""
    from flask import current_app

    reg = current_app.extensions.get("idp.org_registry")
    if reg is None:
        path = current_app.config.get("ORG_REGISTRY")
        if path:
            import importlib

            module, _, name = path.partition(":")
            reg = getattr(importlib.import_module(module), name)()
        else:
            reg = NoRegistry()
        current_app.extensions["idp.org_registry"] = reg
    return reg


def _person_by_number(id_number: str) -> Person:
    try:
        person = person_by_identifier(id_number, phone=False).person
    except InvalidIdNumber as exc:
        raise OrgError(f"invalid ID number: {exc.message_en}") from None
    if person is None:
        raise OrgError("no person with this ID number is registered")
    return person


def find_org(uscc: str) -> Organisation | None:
    try:
        code = parse_credit_code(uscc).code
    except InvalidCreditCode:
        return None
    return db.session.scalar(db.select(Organisation).where(Organisation.uscc == code))


def register_org(uscc: str, name: str | None, legal_rep_id_number: str, *,
                 actor: str) -> Organisation:
    try:
        parsed = parse_credit_code(uscc)
    except InvalidCreditCode as exc:
        raise OrgError(f"invalid credit code: {exc.message_en}") from None
    if find_org(parsed.code) is not None:
        raise OrgError("an organisation with this credit code already exists")
    record = registry().lookup(parsed.code)
    name = (name or (record.name if record else "")).strip()
    if not name:
        raise OrgError("the organisation's name is needed (no registry record found)")
    person = _person_by_number(legal_rep_id_number)
    org = Organisation(uscc=parsed.code, name=name[:255],
                       org_type=record.org_type if record else parsed.org_type_name)
    db.session.add(org)
    db.session.flush()
    db.session.add(Membership(org_id=org.id, person_id=person.id, role="legal_rep",
                              scopes=["all"], appointed_by="registration"))
    db.session.commit()
    audit.record("org.add", actor=actor, subject=f"org:{org.uscc}",
                 details={"legal_rep": person.id})
    return org


def memberships_of(person_id: str, *, valid_only: bool = True
                   ) -> list[tuple[Membership, Organisation]]:
    rows = db.session.execute(
        db.select(Membership, Organisation)
        .join(Organisation, Organisation.id == Membership.org_id)
        .where(Membership.person_id == person_id, Organisation.status == "active")
        .order_by(Organisation.name)).all()
    pairs = [(m, o) for m, o in rows]
    return [(m, o) for m, o in pairs if m.is_valid()] if valid_only else pairs


def members(org: Organisation) -> list[tuple[Membership, Person]]:
    rows = db.session.execute(
        db.select(Membership, Person).join(Person, Person.id == Membership.person_id)
        .where(Membership.org_id == org.id).order_by(Membership.created_at)).all()
    return [(m, p) for m, p in rows]


def manager_role(person_id: str, org: Organisation) -> str | None:
    """'legal_rep' or 'admin' when the person may manage the organisation's members."""
    roles = {m.role for m, o in memberships_of(person_id) if o.id == org.id}
    for role in ("legal_rep", "admin"):
        if role in roles:
            return role
    return None


def grant(org: Organisation, id_number: str, role: str, scopes: list[str],
          until: float | None, *, by: str, by_role: str | None = None) -> Membership:
    """Appoint an administrator or agent. Only the legal representative appoints
    administrators (``by_role``; the CLI, acting as the platform operator, may too)."""
    if role not in ("admin", "agent"):
        raise OrgError("role must be 'admin' or 'agent' (the legal representative comes "
                       "from registration)")
    if role == "admin" and by_role not in (None, "legal_rep"):
        raise OrgError("only the legal representative may appoint administrators")
    bad = set(scopes) - set(BUSINESS_SCOPES)
    if not scopes or bad:
        raise OrgError(f"scopes must be some of: {', '.join(BUSINESS_SCOPES)}")
    if until is not None and until <= time.time():
        raise OrgError("the appointment must end in the future")
    person = _person_by_number(id_number)
    # Appointing someone again in the same role replaces the earlier appointment (new
    # scopes or end date); tokens minted under the old one end with it.
    for old in db.session.scalars(db.select(Membership).where(
            Membership.org_id == org.id, Membership.person_id == person.id,
            Membership.role == role, Membership.revoked_at.is_(None))).all():
        revoke(old, by=by)
    membership = Membership(org_id=org.id, person_id=person.id, role=role,
                            scopes=sorted(set(scopes)), valid_until=until, appointed_by=by)
    db.session.add(membership)
    db.session.commit()
    audit.record("org.grant", actor=by, subject=f"org:{org.uscc}",
                 details={"person": person.id, "role": role, "scopes": membership.scopes,
                          "until": until, "membership": membership.id})
    return membership


def revoke(membership: Membership, *, by: str) -> int:
    """End a membership now, and every grant made under it: refresh tokens stop working
    and its access tokens are refused at introspection and userinfo from this moment."""
    if membership.role == "legal_rep":
        raise OrgError("the legal representative changes only through re-registration")
    membership.revoked_at = time.time()
    db.session.commit()
    families = db.session.scalars(db.select(RefreshToken.family_id).distinct().where(
        RefreshToken.membership_id == membership.id, RefreshToken.revoked_at.is_(None))).all()
    for family in families:
        revoke_grant(family, reason="organisation membership revoked")
    org = db.session.get(Organisation, membership.org_id)
    audit.record("org.revoke", actor=by, subject=f"org:{org.uscc}",
                 details={"person": membership.person_id, "membership": membership.id})
    return len(families)


def eligible(pairs: list[tuple[Membership, Organisation]], client
             ) -> list[tuple[Membership, Organisation]]:
    """Memberships that satisfy what the client requires of an enterprise token."""
    roles = client.meta("org_roles") or list(ROLE_NAMES)
    needed = client.meta("org_scopes") or []
    return [(m, o) for m, o in pairs if m.role in roles and m.covers(needed)]


def org_hint(login_hint: str | None) -> str | None:
    """The credit code a ``login_hint`` names, if it names an organisation rather than a
    person (a valid citizen ID number is always read as the person)."""
    if not login_hint:
        return None
    try:
        parse_person_id(login_hint)
        return None
    except InvalidIdNumber:
        pass
    try:
        return parse_credit_code(login_hint).code
    except InvalidCreditCode:
        return None


def valid_membership(membership_id: str | None) -> Membership | None:
    if not membership_id:
        return None
    m = db.session.get(Membership, membership_id)
    return m if m is not None and m.is_valid() else None


def org_claim(membership: Membership) -> dict:
    org = db.session.get(Organisation, membership.org_id)
    return {"uscc": org.uscc, "name": org.name, "role": membership.role,
            "scopes": membership.scopes}
