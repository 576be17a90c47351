"""A recent sign-in at the account's own level, for every change on the account pages.

Changing the password or phone, revoking an application's access, closing the account:
each needs the browser's session to be

1. recent — signed in (or stepped up) at most ``SECURITY_REAUTH_SECONDS`` ago, so a
   session cookie left behind on a shared computer cannot take the account over; a
   stale session signs in again (the sign-in page with a local request, which comes
   back here), it is not revived by a step-up;
2. at the account's level (``Person.assurance_level``): a real-name (L3) account
   signed in with a password alone (an L2 session) adds a second factor through the
   existing step-up round trip (``/login/step-up``) before its phone can be changed.

Pages call :func:`gate` with the path to come back to; ``None`` means go ahead.
"""

from __future__ import annotations

import time

from flask import current_app, redirect, url_for

from .. import audit
from ..authn import assurance
from ..authn import session as sso
from ..interaction import request as pending_request

# The pages a re-authentication may return to (never a URL taken from the request).
RETURNS = ("/account/password", "/account/phone", "/account/phone?lost=1",
           "/account/phone?counter=1", "/account/apps", "/account/close",
           "/account/enterprise/register")


def needed_level(sess: sso.SSOSession) -> str:
    person = sess.person
    return (person.assurance_level if person else None) or "L2"


def is_recent(sess: sso.SSOSession) -> bool:
    age = time.time() - sess.auth_time
    return age <= float(current_app.config["SECURITY_REAUTH_SECONDS"])


def satisfied(sess: sso.SSOSession) -> bool:
    return is_recent(sess) and assurance.meets(sess.acr, needed_level(sess))


def gate(back: str, action: str, level: str | None = None, *, own_level: bool = True):
    """None when this browser may make the change now; else the response that gets it
    there (sign in, sign in again, or step up), and the refusal is audited.
    ``own_level=False``: ``level`` alone, not the account's (a change whose proof of
    the person comes from elsewhere, e.g. a clerk's in-person check)."""
    back = back if back in RETURNS else "/account/"
    sess = sso.current()
    if sess is None or sess.person is None:
        req = pending_request.local(next=back)
        return redirect(url_for("authn.login", rid=req.id))
    level = max(needed_level(sess) if own_level else "L1", level or "L1", key=assurance.rank)
    if is_recent(sess) and assurance.meets(sess.acr, level):
        return None
    stale = not is_recent(sess)
    audit.record("account.reauth_required", actor=sess.person_id, subject=sess.person_id,
                 details={"action": action, "acr": sess.acr, "needed": level,
                          "stale": stale, "sid": sess.sid})
    req = pending_request.local(next=back, acr_values=level)
    if stale:
        # The sign-in page, then (if a factor is still missing) the step-up.
        return redirect(url_for("authn.login", rid=req.id, reauth=1))
    return redirect(url_for("stepup.page", rid=req.id))

