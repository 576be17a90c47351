"""What a password reset does, however the person proved who they are (SMS code to the
registered phone, face match, a clerk at a hall counter): the new password, then every
session of the account ends (its relying parties told by back-channel logout), every
refresh and access token is revoked, any copy of a legacy system's hash is dropped, the
holder is told by SMS, the account's password lockout is lifted (the person proved who
they are; guesses at the old password say nothing about the new one), and the reset is
audited."""

from __future__ import annotations

from .. import audit, revocation, single_logout
from ..authn import lockout
from ..authn.password import find_person
from ..authn.sms_notice import send_notice
from ..crypto.passwords import hash_password
from ..extensions import db
from ..models import LegacyAccount, Person


def reset_password(person: Person, new_password: str, *, method: str, actor: str | None = None,
                   client_id: str | None = None) -> list:
    """Set ``new_password`` and end everything the old one opened. ``method``: ``sms``,
    ``face`` or ``counter``; ``actor`` the clerk for a counter reset. Returns the
    back-channel logout futures (tests wait on them)."""
    person.password_hash = hash_password(new_password)
    db.session.execute(db.update(LegacyAccount).where(
        LegacyAccount.person_id == person.id).values(password_hash=None))
    db.session.commit()
    lockout.clear(find_person(person.id_number)[2])
    futures = single_logout.end_all_sessions(person.id, actor=actor or person.id,
                                             reason="password_reset")
    revoked = revocation.revoke_person(person.id, "password_reset")
    notified = send_notice(person.phone, "password_reset")
    audit.record("password.reset", actor=actor or person.id, subject=person.id,
                 client_id=client_id,
                 details={"method": method, "tokens_revoked": revoked, "sms_notice": notified})
    return futures
