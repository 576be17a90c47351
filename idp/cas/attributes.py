"""What a CAS service learns about the person: ``<cas:user>`` and the attributes of a
CAS 3.0 validation, by the same scope and consent rules as OIDC claims.

The scope is fixed at sign-in (the client's registered scopes, less any sensitive
scope it is not allowed) and consented to there; here it only selects. So a service
gets the masked ID number under ``profile`` and the full number only under ``idcard``,
exactly as an OIDC client would. CAS attributes are lists of strings."""

from __future__ import annotations

from datetime import UTC, datetime

from ..authn.assurance import public_amr
from ..oidc.claims import legacy_claim, user_claims
from ..oidc.subject import subject_for
from ..orgs import org_claim, valid_membership
from .tickets import Ticket


def user(client, t: Ticket) -> str:
    """What the service knows the person as: the same ``sub`` an OIDC client would see
    (public, or pairwise per the client's host)."""
    return subject_for(client, t.person_id)


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attributes(client, person, t: Ticket) -> dict[str, list[str]]:
    sub = user(client, t)
    out: dict[str, list[str]] = {}
    for name, value in user_claims(person, t.scope, sub).items():
        if name != "sub" and value is not None:
            out[name] = [_text(value)]
    if "legacy" in t.scope.split():
        ids = [f"{e['system']}:{e['legacy_id']}" for e in legacy_claim(person.id, client)]
        if ids:
            out["legacy_accounts"] = ids
    if t.acr:
        out["acr"] = [t.acr]
    amr = public_amr(t.amr)
    if amr:
        out["amr"] = amr
    if t.channel:
        out["channel"] = [t.channel]
    membership = valid_membership(t.membership_id) if t.membership_id else None
    if membership is not None:
        org = org_claim(membership)
        out["org_uscc"], out["org_name"], out["org_role"] = \
            [org["uscc"]], [org["name"]], [org["role"]]
        if org.get("scopes"):
            out["org_scopes"] = [str(s) for s in org["scopes"]]
    # The attributes CAS 3.0 servers customarily add (Apereo's names).
    out["authenticationDate"] = [
        datetime.fromtimestamp(t.auth_time, UTC).isoformat().replace("+00:00", "Z")]
    out["isFromNewLogin"] = [_text(t.new_login)]
    out["longTermAuthenticationRequestTokenUsed"] = ["false"]
    return out
