"""Running the checks, and what a protocol does when they are all satisfied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import audit, orgs
from ..authn import session as sso
from .checks import DEFAULT
from .context import Context, Needed, Refused


def evaluate(ctx: Context, checks=None) -> Needed | Refused | None:
    """The first check that is not satisfied, or None when all are."""
    for check in checks if checks is not None else DEFAULT:
        outcome = check(ctx)
        if outcome is not None:
            return outcome
    return None


@dataclass
class Completion:
    person: Any
    session: sso.SSOSession
    client: Any
    membership: Any
    channel: str


def complete(ctx: Context, channel: str) -> Completion:
    """What every protocol does before it issues: the pending request is used up, the
    session remembers the relying party (single logout), acting for an organisation is
    audited."""
    ctx.request.finish()
    sess, client, membership = ctx.session, ctx.client, ctx.membership
    sso.add_client(sess, client.client_id)
    if membership is not None:
        claim = orgs.org_claim(membership)
        audit.record("org.act", actor=sess.person_id, subject=f"org:{claim['uscc']}",
                     client_id=client.client_id,
                     details={"role": membership.role, "membership": membership.id})
    return Completion(person=sess.person, session=sess, client=client,
                      membership=membership, channel=channel)
