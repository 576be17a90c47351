"""Closing an account (注销): asked for by its owner, erased after a cooling-off period.

1. :func:`request_close` — the owner asks (with a recent sign-in at the account's level,
   checked by the page). Nothing is taken away yet; the account page shows the date and
   a way to cancel (:func:`cancel_close`), and the phone is told by SMS. A legal
   representative must hand the enterprise over first: an enterprise is never left
   without one.
2. :func:`erase` — once ``ACCOUNT_CLOSE_COOLING_DAYS`` have passed (``idp account
   close-due``, run daily): every session ends (relying parties told), every grant is
   revoked, consents, authenticators and appointments go, legacy accounts are released
   (unlinked, so a later registration of the same person can claim them again), and the
   person's name, ID number, phone and password are erased from the row, which keeps only
   its internal id (the ``sub`` relying parties knew is never handed to anyone else) and
   ``status = "closed"``. The audit log keeps its entries, which were masked when
   recorded; the closure itself is audited (``account.close_requested|cancelled|closed``).
"""

from __future__ import annotations

import time

from flask import current_app

from .. import audit, single_logout
from ..authn import session as sso
from ..extensions import db
from ..models import (
    Consent,
    LegacyAccount,
    Membership,
    Person,
    RefreshToken,
    TotpCredential,
    WebAuthnCredential,
)
from ..revocation import revoke_person
from . import notices


class ClosureRefused(ValueError):
    """Why the account cannot be closed now (``code``: a fixed word the page explains)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def cooling_seconds() -> float:
    return float(current_app.config["ACCOUNT_CLOSE_COOLING_DAYS"]) * 86400


def closes_at(person: Person) -> float | None:
    if person.close_requested_at is None:
        return None
    return person.close_requested_at + cooling_seconds()


def _leads_an_enterprise(person_id: str) -> bool:
    now = time.time()
    return db.session.scalar(db.select(Membership.id).where(
        Membership.person_id == person_id, Membership.role == "legal_rep",
        Membership.revoked_at.is_(None),
        (Membership.valid_until.is_(None)) | (Membership.valid_until > now)).limit(1)) is not None


def request_close(person: Person, *, sid: str | None = None) -> float:
    """Start the cooling-off period; returns when the account will be erased."""
    if person.status != "active":
        raise ClosureRefused("not_active")
    if _leads_an_enterprise(person.id):
        raise ClosureRefused("legal_rep")
    if person.close_requested_at is None:
        person.close_requested_at = time.time()
        db.session.commit()
        audit.record("account.close_requested", actor=person.id, subject=person.id,
                     details={"sid": sid, "closes_at": closes_at(person)})
        notices.tell(person.phone, "close_requested")
    return closes_at(person)


def cancel_close(person: Person) -> bool:
    if person.close_requested_at is None:
        return False
    person.close_requested_at = None
    db.session.commit()
    audit.record("account.close_cancelled", actor=person.id, subject=person.id)
    notices.tell(person.phone, "close_cancelled")
    return True


def due(now: float | None = None) -> list[Person]:
    limit = (now or time.time()) - cooling_seconds()
    return list(db.session.scalars(db.select(Person).where(
        Person.status == "active", Person.close_requested_at.is_not(None),
        Person.close_requested_at <= limit).order_by(Person.close_requested_at)))


def erase(person: Person, *, actor: str) -> dict:
    """Erase the account now (the cooling-off period is the caller's to check)."""
    pid = person.id
    sessions = len(sso.sessions_of(pid))
    single_logout.end_all_sessions(pid, actor=actor, reason="account_closed")
    tokens = revoke_person(pid, reason="account_closed")
    legacy = db.session.scalars(db.select(LegacyAccount).where(
        LegacyAccount.person_id == pid)).all()
    for row in legacy:
        row.person_id, row.state, row.rule = None, "released", "account_closed"
    now = time.time()
    for m in db.session.scalars(db.select(Membership).where(
            Membership.person_id == pid, Membership.revoked_at.is_(None))):
        m.revoked_at = now
    for model in (Consent, TotpCredential, WebAuthnCredential):
        db.session.execute(db.delete(model).where(model.person_id == pid))
    db.session.execute(db.delete(RefreshToken).where(RefreshToken.person_id == pid))
    # The row stays (its id is a subject relying parties knew); its person does not.
    person.id_number = ""
    person.id_number_idx = f"closed:{pid}"
    person.name = "（已注销）"
    person.phone = None
    person.password_hash = None
    person.status = "closed"
    person.assurance_level = "L1"
    person.assurance_method = None
    db.session.commit()
    summary = {"sessions": sessions, "tokens": tokens, "legacy_released": len(legacy)}
    audit.record("account.closed", actor=actor, subject=pid, details=summary)
    return summary
