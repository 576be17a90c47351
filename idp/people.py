"""Operating on a person's account: find, show (masked), lock, unlock, reset
authenticators, end every session, ask for re-verification, and reveal in full.

The admin console, its REST API and the ``idp user`` commands share these, so a lock
from the command line and one from the console are the same change with the same audit
entry. Nothing here is a page: callers decide who may call what (``admin.roles``).

Masking: :func:`summary` and :func:`detail` show names, ID numbers and phones masked;
only :func:`reveal` returns them in full, and it is audited with the reason given.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from . import audit
from .accounts import person_by_identifier
from .authn import session as sso
from .extensions import db
from .identity import InvalidIdNumber, InvalidPhone
from .identity.masking import mask_id_number, mask_name, mask_phone
from .models import (
    Consent,
    LegacyAccount,
    Membership,
    Organisation,
    Person,
    TotpCredential,
    WebAuthnCredential,
)
from .revocation import revoke_person
from .single_logout import end_all_sessions

STATUSES = ("active", "locked", "merged")
SEARCH_KINDS = ("id_number", "phone", "name", "legacy")
MAX_RESULTS = 50
# The keyed hash of a name search in the audit log (see name_query_details).
NAME_SEARCH_CONTEXT = "audit.person-search.name"
# Level an account falls back to when an operator asks it to be verified again: the
# self-declared level, from which the usual real-name check raises it again.
REVERIFY_LEVEL = "L2"


class PersonError(ValueError):
    """A refused operation, with a message for the operator (English; the console maps
    it to its own words)."""


@dataclass(frozen=True)
class Summary:
    id: str
    name: str
    id_number: str
    phone: str
    status: str
    assurance_level: str
    created_at: float


def summary(person: Person) -> Summary:
    return Summary(id=person.id, name=mask_name(person.name),
                   id_number=mask_id_number(person.id_number),
                   phone=mask_phone(person.phone) if person.phone else "",
                   status=person.status, assurance_level=person.assurance_level,
                   created_at=person.created_at)


def get(person_id: str) -> Person | None:
    if not isinstance(person_id, str) or not person_id or len(person_id) > 32:
        return None
    return db.session.get(Person, person_id)


def _require(person_id: str) -> Person:
    person = get(person_id)
    if person is None:
        raise LookupError(f"no person {person_id!r}")
    return person


def _escaped_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _by_number(kind: str, text: str, limit: int) -> list[Person]:
    try:
        found = person_by_identifier(text, phone=kind == "phone")
    except (InvalidIdNumber, InvalidPhone) as exc:
        raise PersonError(exc.message_en) from None
    if found.kind != ("phone" if kind == "phone" else "id"):
        raise PersonError("this is not a mainland mobile number" if kind == "phone"
                          else "this is not an ID number")
    if found.person is not None or kind != "phone":
        return [found.person] if found.person else []
    # A number shared by several accounts names nobody for sign-in, but an operator
    # needs to see all of them.
    from .models import phone_index
    return list(db.session.scalars(db.select(Person).where(
        Person.phone_idx == phone_index(found.value)).limit(limit + 1)))


def _by_name(text: str, limit: int) -> list[Person]:
    return list(db.session.scalars(db.select(Person).where(
        Person.name.like(_escaped_prefix(text), escape="\\")).order_by(Person.created_at)
        .limit(limit + 1)))


def _by_legacy(text: str, limit: int) -> list[Person]:
    source, _, legacy_id = text.partition(":")
    if not source.strip() or not legacy_id.strip():
        raise PersonError("a legacy account is source:legacy-id")
    ids = db.session.scalars(db.select(LegacyAccount.person_id).where(
        LegacyAccount.source == source.strip(), LegacyAccount.legacy_id == legacy_id.strip(),
        LegacyAccount.person_id.is_not(None)).limit(limit + 1))
    return [p for p in (db.session.get(Person, i) for i in ids) if p is not None]


def name_query_details(text: str) -> dict[str, str]:
    """How a name search is written to the audit log: masked as results are
    (``mask_name``), plus a keyed hash (HMAC-SM3 under the blind-index key, its own
    context) so that repeated searches for the same text can be told apart without the
    text. A plain hash would not do: names are few enough to try them all."""
    from flask import current_app

    keyed = current_app.extensions["idp.fieldcrypto"].blind_index(text, NAME_SEARCH_CONTEXT)
    return {"query": mask_name(text), "query_hmac": keyed[:32]}


def _lookup_details(kind: str, text: str, people: list[Person]) -> dict[str, Any]:
    details: dict[str, Any] = {"by": kind, "found": len(people)}
    if kind == "name":
        details.update(name_query_details(text))
    elif kind == "legacy":
        details["source"] = text.partition(":")[0].strip()[:64]
    return details


def search(kind: str, text: str, *, actor: str, limit: int = MAX_RESULTS
           ) -> tuple[list[Summary], bool]:
    """People matching ``text``: an ID number or phone exactly (through the blind
    indexes), a name exactly or by its beginning, or a legacy account ``source:id``.
    Returns (masked summaries, truncated). Every search is audited
    (``admin.person_lookup``: who looked, how, how many were found) — never with the
    number or name searched for: a name search keeps only its masked form and a keyed
    hash (:func:`name_query_details`), a legacy search only the source system."""
    text = (text or "").strip()
    if kind not in SEARCH_KINDS:
        raise PersonError(f"kind must be one of {', '.join(SEARCH_KINDS)}")
    if not text or len(text) > 128:
        raise PersonError("enter 1–128 characters")
    if kind in ("id_number", "phone"):
        people = _by_number(kind, text, limit)
    elif kind == "name":
        people = _by_name(text, limit)
    else:
        people = _by_legacy(text, limit)
    audit.record("admin.person_lookup", actor=actor,
                 subject=people[0].id if len(people) == 1 else None,
                 details=_lookup_details(kind, text, people))
    truncated = len(people) > limit
    return [summary(p) for p in people[:limit]], truncated


def listing(*, status: str | None = None, page: int = 1, per_page: int = 50
            ) -> tuple[list[Summary], int]:
    query = db.select(Person)
    if status:
        query = query.where(Person.status == status)
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(query.order_by(Person.created_at.desc(), Person.id)
                              .offset((page - 1) * per_page).limit(per_page))
    return [summary(p) for p in rows], total


@dataclass
class Detail:
    person: Summary
    assurance_method: str | None
    assurance_verified_at: float | None
    has_password: bool
    authenticators: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    legacy_accounts: list[dict[str, Any]] = field(default_factory=list)
    enterprises: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def detail(person_id: str) -> Detail | None:
    """Everything an operator may see of a person, masked."""
    person = get(person_id)
    if person is None:
        return None
    auths = [{"kind": "totp", "id": t.id, "name": "TOTP", "created_at": t.created_at,
              "confirmed": t.confirmed_at is not None}
             for t in db.session.scalars(db.select(TotpCredential).where(
                 TotpCredential.person_id == person.id))]
    auths += [{"kind": "webauthn", "id": w.id, "name": w.name or "WebAuthn",
               "created_at": w.created_at, "confirmed": True}
              for w in db.session.scalars(db.select(WebAuthnCredential).where(
                  WebAuthnCredential.person_id == person.id))]
    sessions = [{"sid": s.sid, "acr": s.acr, "amr": list(s.amr), "channel": s.channel,
                 "device": s.device, "network": s.network, "auth_time": s.auth_time}
                for s in sso.sessions_of(person.id)]
    consents = [{"client_id": c.client_id, "scopes": c.scopes, "granted_at": c.granted_at}
                for c in db.session.scalars(db.select(Consent).where(
                    Consent.person_id == person.id))]
    legacy = [{"source": a.source, "legacy_id": a.legacy_id, "state": a.state,
               "rule": a.rule, "last_seen": a.last_seen}
              for a in db.session.scalars(db.select(LegacyAccount).where(
                  LegacyAccount.person_id == person.id).limit(200))]
    orgs = [{"org": o.name, "role": m.role, "valid": m.is_valid(),
             "valid_until": m.valid_until}
            for m, o in db.session.execute(
                db.select(Membership, Organisation)
                .join(Organisation, Organisation.id == Membership.org_id)
                .where(Membership.person_id == person.id)).all()]
    return Detail(person=summary(person), assurance_method=person.assurance_method,
                  assurance_verified_at=person.assurance_verified_at,
                  has_password=bool(person.password_hash), authenticators=auths,
                  sessions=sessions, consents=consents, legacy_accounts=legacy,
                  enterprises=orgs)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise PersonError("give a reason (it is kept in the audit log)")
    return reason[:500]


def end_sessions(person_id: str, *, actor: str, reason: str) -> dict[str, int]:
    """End every session (relying parties told by back-channel logout) and revoke every
    grant. Returns how many sessions and grants ended."""
    person = _require(person_id)
    reason = _reason(reason)
    count = len(sso.sessions_of(person.id))
    end_all_sessions(person.id, actor=actor, reason=reason)
    revoked = revoke_person(person.id, reason="admin_end_sessions")
    audit.record("admin.person.sessions_ended", actor=actor, subject=person.id,
                 details={"sessions": count, "grants": revoked, "reason": reason})
    return {"sessions": count, "grants": revoked}


def lock(person_id: str, *, actor: str, reason: str) -> Person:
    """No sign-in of any kind until unlocked; live sessions and tokens end now."""
    person = _require(person_id)
    reason = _reason(reason)
    if person.status == "merged":
        raise PersonError("this account was merged into another; lock that one")
    if person.status != "locked":
        person.status = "locked"
        db.session.commit()
    audit.record("admin.person.locked", actor=actor, subject=person.id,
                 details={"reason": reason})
    end_all_sessions(person.id, actor=actor, reason="locked")
    revoke_person(person.id, reason="person_locked")
    return person


def unlock(person_id: str, *, actor: str, reason: str) -> Person:
    person = _require(person_id)
    reason = _reason(reason)
    if person.status != "locked":
        raise PersonError(f"the account is {person.status}, not locked")
    person.status = "active"
    db.session.commit()
    audit.record("admin.person.unlocked", actor=actor, subject=person.id,
                 details={"reason": reason})
    return person


def reset_authenticators(person_id: str, *, actor: str, reason: str) -> dict[str, int]:
    """Remove every TOTP and WebAuthn credential (a lost phone or key), and end the
    sessions they may have raised; the person enrols again after signing in."""
    person = _require(person_id)
    reason = _reason(reason)
    totp = db.session.execute(db.delete(TotpCredential).where(
        TotpCredential.person_id == person.id)).rowcount
    webauthn = db.session.execute(db.delete(WebAuthnCredential).where(
        WebAuthnCredential.person_id == person.id)).rowcount
    db.session.commit()
    audit.record("admin.person.authenticators_reset", actor=actor, subject=person.id,
                 details={"totp": totp, "webauthn": webauthn, "reason": reason})
    end_all_sessions(person.id, actor=actor, reason="authenticators_reset")
    return {"totp": totp, "webauthn": webauthn}


def require_reverification(person_id: str, *, actor: str, reason: str) -> Person:
    """Lower the account to the self-declared level, so that the next service needing
    real name sends the person through verification again (e.g. a suspected
    impersonation)."""
    from .authn import assurance

    person = _require(person_id)
    reason = _reason(reason)
    before = person.assurance_level
    if assurance.rank(before) > assurance.rank(REVERIFY_LEVEL):
        person.assurance_level = REVERIFY_LEVEL
    person.assurance_method = "reverify_required"
    person.assurance_verified_at = time.time()
    db.session.commit()
    audit.record("admin.person.reverify", actor=actor, subject=person.id,
                 details={"from": before, "to": person.assurance_level, "reason": reason})
    end_all_sessions(person.id, actor=actor, reason="reverification")
    return person


def reveal(person_id: str, *, actor: str, reason: str) -> dict[str, str]:
    """The unmasked name, ID number and phone: a separate, audited act with a reason."""
    person = _require(person_id)
    reason = _reason(reason)
    audit.record("admin.person.revealed", actor=actor, subject=person.id,
                 details={"reason": reason})
    return {"name": person.name, "id_number": person.id_number, "phone": person.phone or ""}
