"""Where I am signed in (``/account/sessions``): the person's live single sign-on
sessions — device, masked network, channel, level, when — with "sign out here" for one
and "sign out everywhere" for all (this browser too), each telling the relying parties
of the sessions ended (:mod:`idp.single_logout`).

Signing out needs no fresh sign-in: it only takes access away, and a person who sees a
thief's session must be able to end it at once.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from .. import single_logout
from ..authn import session as sso
from ..extensions import db
from ..models import RefreshToken
from ..revocation import revoke_grant
from ..ui import local_time
from . import words
from .views import _sign_in_first, bp


def _rows(current: sso.SSOSession) -> list[dict]:
    return [{"sid": s.sid, "this": s.key == current.key,
             "device": s.device, "network": s.network,
             "channel": words.channel(s.channel), "level": words.level(s.acr),
             "methods": words.methods(s.amr), "since": local_time(s.auth_time)}
            for s in sso.sessions_of(current.person_id)]


@bp.get("/sessions")
def sessions_page():
    sess = sso.current()
    if sess is None:
        return _sign_in_first("/account/sessions")
    return render_template("account/sessions.html", rows=_rows(sess),
                           done=request.args.get("done"))


@bp.post("/sessions/<sid>/end")
def end_one(sid: str):
    sess = sso.current()
    if sess is None:
        return _sign_in_first("/account/sessions")
    target = next((s for s in sso.sessions_of(sess.person_id) if s.sid == sid), None)
    if target is None:  # ended meanwhile, or not this person's: the same answer
        return redirect(url_for(".sessions_page", done="gone"))
    single_logout.end_session(target, actor=sess.person_id, reason="signed_out_by_owner")
    if target.key == sess.key:
        return render_template("logged_out.html")
    return redirect(url_for(".sessions_page", done="ended"))


@bp.post("/sessions/end-all")
def end_all():
    sess = sso.current()
    if sess is None:
        return _sign_in_first("/account/sessions")
    single_logout.end_all_sessions(sess.person_id, actor=sess.person_id,
                                   reason="signed_out_everywhere")
    return render_template("logged_out.html", everywhere=True)


def end_other_sessions(sess: sso.SSOSession, reason: str) -> None:
    """Every other session ends (relying parties told), and every refresh token not
    issued in this one is revoked: whoever knew the old password is out."""
    single_logout.end_all_sessions(sess.person_id, actor=sess.person_id, reason=reason,
                                   keep=sess)
    families = set(db.session.scalars(db.select(RefreshToken.family_id).where(
        RefreshToken.person_id == sess.person_id, RefreshToken.revoked_at.is_(None),
        (RefreshToken.sid.is_(None)) | (RefreshToken.sid != sess.sid))))
    for gid in sorted(families):
        revoke_grant(gid, reason=reason)
