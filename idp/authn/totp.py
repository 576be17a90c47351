"""TOTP authenticators (RFC 6238: 6 digits, 30-second steps, SHA-1 — what every
authenticator app speaks).

Enrolment makes an unconfirmed credential whose secret is SM4-GCM encrypted, bound
to the person; the person scans the ``otpauth://`` QR code and types a first code,
which confirms it. Only confirmed credentials sign in. A code is accepted within
``TOTP_WINDOW`` steps of now and only for a step newer than the last accepted one;
the "newer" test is one conditional UPDATE, so two workers cannot both accept a code.
Wrong codes are counted per person in the shared store and rest the method for a while.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import pyotp
from flask import current_app

from ..extensions import db
from ..identity.masking import mask_id_number, mask_phone
from ..models import Person, TotpCredential
from ..store import store

STEP = 30


@dataclass
class TotpResult:
    ok: bool
    # None, or: invalid, replayed, locked, not_enrolled
    error: str | None = None
    credential: TotpCredential | None = None


def _context(person_id: str) -> str:
    # The ciphertext is bound to its owner: a secret copied onto another person's row
    # does not decrypt.
    return f"totp.secret:{person_id}"


def _crypto():
    return current_app.extensions["idp.fieldcrypto"]


def secret_of(cred: TotpCredential) -> str:
    return _crypto().decrypt(cred.secret_enc, _context(cred.person_id))


def _now() -> float:
    return time.time()


def confirmed(person_id: str) -> list[TotpCredential]:
    return list(db.session.scalars(db.select(TotpCredential).where(
        TotpCredential.person_id == person_id, TotpCredential.confirmed_at.is_not(None))
        .order_by(TotpCredential.created_at)))


def has_totp(person_id: str) -> bool:
    return db.session.scalar(db.select(TotpCredential.id).where(
        TotpCredential.person_id == person_id,
        TotpCredential.confirmed_at.is_not(None)).limit(1)) is not None


def begin(person: Person) -> TotpCredential:
    """A new unconfirmed credential (any earlier unconfirmed one is dropped)."""
    db.session.execute(db.delete(TotpCredential).where(
        TotpCredential.person_id == person.id, TotpCredential.confirmed_at.is_(None)))
    cred = TotpCredential(person_id=person.id,
                          secret_enc=_crypto().encrypt(pyotp.random_base32(), _context(person.id)))
    db.session.add(cred)
    db.session.commit()
    return cred


def provisioning_uri(person: Person, cred: TotpCredential) -> str:
    # The label is what the app shows; masked, since authenticator apps sync to clouds.
    label = mask_phone(person.phone) if person.phone_enc else mask_id_number(person.id_number)
    return pyotp.TOTP(secret_of(cred)).provisioning_uri(
        name=label, issuer_name=current_app.config["TOTP_ISSUER"])


def _matching_step(secret: str, code: str, at: float) -> int | None:
    code = "".join((code or "").split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(at // STEP)
    window = int(current_app.config["TOTP_WINDOW"])
    found = None
    for step in range(now_step - window, now_step + window + 1):
        # No early exit: the time taken says nothing about which step matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def _claim_step(cred: TotpCredential, step: int) -> bool:
    """Record ``step`` as used, only if it is newer than the last used one."""
    result = db.session.execute(
        db.update(TotpCredential)
        .where(TotpCredential.id == cred.id, TotpCredential.last_step < step)
        .values(last_step=step)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


def _fail_key(person_id: str) -> str:
    return f"totp:fail:{person_id}"


def locked(person_id: str) -> bool:
    cfg = current_app.config
    count = store().get(_fail_key(person_id))
    return count is not None and int(count) >= cfg["STEPUP_MAX_FAILURES"]


def _try(person_id: str) -> bool:
    """Count this attempt before any code is compared; False when the tries are used up.
    Counting first (one atomic increment) is what stops parallel requests that would all
    pass a "locked?" check made before any of them counted its failure; a right code
    clears the count."""
    cfg = current_app.config
    return store().incr(_fail_key(person_id), cfg["STEPUP_FAILURE_WINDOW"]) <= int(
        cfg["STEPUP_MAX_FAILURES"])


def verify(person_id: str, code: str) -> TotpResult:
    """Check a code against the person's confirmed credentials."""
    creds = confirmed(person_id)
    if not creds:
        return TotpResult(False, "not_enrolled")
    if not _try(person_id):
        return TotpResult(False, "locked")
    at = _now()
    replayed = False
    for cred in creds:
        step = _matching_step(secret_of(cred), code, at)
        if step is None:
            continue
        if _claim_step(cred, step):
            store().delete(_fail_key(person_id))
            return TotpResult(True, credential=cred)
        replayed = True
    return TotpResult(False, "replayed" if replayed else "invalid")


def confirm(cred: TotpCredential, code: str) -> TotpResult:
    """Prove a new credential with a first code; it then counts as enrolled."""
    if not _try(cred.person_id):
        return TotpResult(False, "locked")
    step = _matching_step(secret_of(cred), code, _now())
    if step is None or not _claim_step(cred, step):
        return TotpResult(False, "invalid")
    store().delete(_fail_key(cred.person_id))
    cred.confirmed_at = _now()
    db.session.commit()
    return TotpResult(True, credential=cred)


def remove(person_id: str, cred_id: str) -> bool:
    result = db.session.execute(db.delete(TotpCredential).where(
        TotpCredential.id == cred_id, TotpCredential.person_id == person_id))
    db.session.commit()
    return result.rowcount == 1
