"""Connected applications (``/account/apps``): every relying party that holds the
person's consent or a live refresh token, what each may read (the consent page's own
words for each scope), and "revoke" — the consent and every token at once, so the next
visit to that application asks again. Revoking needs a recent sign-in
(:mod:`idp.account.recent`)."""

from __future__ import annotations

import time

from flask import redirect, render_template, request, url_for
from sqlalchemy import select

from .. import audit
from ..authn import session as sso
from ..extensions import db
from ..models import Client, Consent, RefreshToken
from ..oidc.claims import CLAIM_SCOPES, describe_claims, describe_scopes
from ..revocation import revoke_person_client
from ..ui import local_time
from . import recent
from .views import _sign_in_first, bp

APPS = "/account/apps"


def _holdings(person_id: str) -> dict[str, dict]:
    """client_id -> {"scopes": set, "since": first grant, "tokens": live refresh families}."""
    now = time.time()
    held: dict[str, dict] = {}
    for c in db.session.scalars(select(Consent).where(Consent.person_id == person_id)):
        entry = held.setdefault(c.client_id, {"scopes": set(), "since": c.granted_at,
                                              "families": set()})
        entry["scopes"] |= set((c.scopes or "").split())
        # Claims given by name (OIDC ``claims`` parameter), beyond the scopes.
        entry.setdefault("claims", set()).update((c.claims or "").split())
    for t in db.session.scalars(select(RefreshToken).where(
            RefreshToken.person_id == person_id, RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now)):
        entry = held.setdefault(t.client_id, {"scopes": set(), "since": t.issued_at,
                                              "families": set()})
        entry["scopes"] |= set((t.scope or "").split())
        for names in (t.claims or {}).values():
            entry.setdefault("claims", set()).update(names)
        entry["families"].add(t.family_id)
        entry["since"] = min(entry["since"], t.issued_at)
    return held


@bp.get("/apps")
def apps_page():
    sess = sso.current()
    if sess is None:
        return _sign_in_first(APPS)
    held = _holdings(sess.person_id)
    clients = {c.client_id: c for c in db.session.scalars(
        select(Client).where(Client.client_id.in_(sorted(held))))} if held else {}
    rows = [{"client_id": cid, "name": (clients[cid].name or cid) if cid in clients else cid,
             "reads": [text for _, text in describe_scopes(" ".join(sorted(h["scopes"])))]
             + [text for n, text in describe_claims(sorted(h.get("claims", ())))
                if CLAIM_SCOPES.get(n) not in h["scopes"]],
             "since": local_time(h["since"]), "signed_in_now": bool(h["families"])}
            for cid, h in sorted(held.items(), key=lambda kv: -kv[1]["since"])]
    return render_template("account/apps.html", rows=rows, done=request.args.get("done"))


@bp.post("/apps/<client_id>/revoke")
def app_revoke(client_id: str):
    refused = recent.gate(APPS, "app_revoke")
    if refused is not None:
        return refused
    sess = sso.current()
    held = _holdings(sess.person_id).get(client_id)
    if held is None:
        return redirect(url_for(".apps_page", done="gone"))
    db.session.execute(db.delete(Consent).where(Consent.person_id == sess.person_id,
                                                Consent.client_id == client_id))
    db.session.commit()
    tokens = revoke_person_client(sess.person_id, client_id, reason="revoked_by_owner")
    audit.record("account.app_revoked", actor=sess.person_id, subject=sess.person_id,
                 client_id=client_id, details={"grants": len(held["families"]),
                                               "tokens": tokens})
    return redirect(url_for(".apps_page", done="revoked"))
