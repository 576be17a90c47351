"""Who an assertion is about (NameID) and what it says about them (attributes).

NameID ``persistent`` is pairwise per SP — the same HMAC-SM3 pairwise value a pairwise
OIDC client gets, with the SP's entity ID as the sector — so two SPs cannot link their
users; ``transient`` is a fresh random value per assertion. What was issued is kept for
the session's lifetime so single logout can name the person the way this SP knows them.

Attributes follow the OIDC claim rules (:func:`idp.oidc.claims.user_claims`): ``profile``
gives the name and the masked ID number, the full number only under ``idcard`` for SPs
registered for it and with consent; ``acr``, ``channel`` and ``org`` where present.
"""

from __future__ import annotations

import secrets

from flask import current_app
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NameID

from ..authn.assurance import public_amr
from ..oidc.claims import legacy_claim, user_claims
from ..orgs import org_claim
from ..store import store
from .server import entity_id


def scopes_for(sp) -> list[str]:
    """What an SP receives: its registered scopes (``--scope``; default openid profile)
    and the sensitive scopes it is allowed (``idcard``: the full ID number, with
    consent) — the same rule as a CAS service's (:func:`idp.cas.interaction.scopes_of`)."""
    registered = (sp.meta("scope") or "openid profile").split()
    return [*registered, *(s for s in sp.allowed_sensitive_scopes or [] if s not in registered)]


def name_id(sp, person_id: str, fmt: str) -> NameID:
    if fmt == NAMEID_FORMAT_TRANSIENT:
        value = "_" + secrets.token_hex(20)
    else:
        fmt = NAMEID_FORMAT_PERSISTENT
        value = current_app.extensions["idp.fieldcrypto"].pairwise_subject(
            sp.meta("entity_id"), person_id)
    return NameID(format=fmt, name_qualifier=entity_id(), sp_name_qualifier=sp.meta("entity_id"),
                  text=value)


def _key(sid: str, client_id: str) -> str:
    return f"samlnid:{sid}:{client_id}"


def remember(sid: str, sp, nid: NameID) -> None:
    store().set(_key(sid, sp.client_id), {"format": nid.format, "value": nid.text},
                current_app.config["SSO_ABSOLUTE_TIMEOUT"])


def issued(sid: str, sp) -> dict | None:
    record = store().get(_key(sid, sp.client_id))
    return record if isinstance(record, dict) else None


def forget(sid: str, sp) -> None:
    store().delete(_key(sid, sp.client_id))


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attributes(sp, person, scope: str, sess, membership, channel: str) -> dict[str, list[str]]:
    """The attribute statement: the same names and values a CAS service gets
    (:mod:`idp.cas.attributes`), so an SP moving between the two sees one vocabulary."""
    out: dict[str, list[str]] = {}
    for name, value in user_claims(person, scope, sub="").items():
        if name != "sub" and value not in (None, ""):
            out[name] = [_text(value)]
    if "legacy" in scope.split():
        ids = [f"{e['system']}:{e['legacy_id']}" for e in legacy_claim(person.id, sp)]
        if ids:
            out["legacy_accounts"] = ids
    if sess.acr:
        out["acr"] = [sess.acr]
    amr = public_amr(sess.amr)
    if amr:
        out["amr"] = amr
    if channel:
        out["channel"] = [channel]
    if membership is not None:
        org = org_claim(membership)
        out["org_uscc"], out["org_name"], out["org_role"] = \
            [org["uscc"]], [org["name"]], [org["role"]]
        if org.get("scopes"):
            out["org_scopes"] = [str(s) for s in org["scopes"]]
    return out
