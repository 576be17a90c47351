"""Upstream OpenID Connect providers: another province's or a department's IdP that people
may sign in with here. One sign-in there, and the verified claims link that account.

Configuration is one TOML file per upstream (or a table of the same shape in the
``UPSTREAM_IDPS`` setting)::

    [source]
    name = "zhejiang"              # required; the URL segment /login/upstream/zhejiang
    kind = "oidc"                  # required, always "oidc"
    system = "zj-unified-auth"     # LegacyAccount.source of its links; default: name
    label = "浙江政务服务网"         # the button says 使用浙江政务服务网账号登录
    label_en = "Zhejiang Gov Services"

    [oidc]
    issuer = "https://idp.zj.example"   # discovery: {issuer}/.well-known/openid-configuration
    client_id = "our-client-at-zj"
    client_secret_env = "ZJ_SECRET"     # or client_secret = "..."
    token_endpoint_auth_method = "client_secret_basic"  # | client_secret_post | none
    scope = "openid profile idcard"
    create = false        # true: a person unknown here is created (a real-name platform)
    level = "L3"          # how far it verified its people: L3/L4 (real name checked against
                          # the register) may link to existing accounts by ID number and
                          # name; L2 (self-declared) only by review. Also the level of the
                          # people it creates
    redirect_uri = ""     # default: ISSUER + /login/upstream/<name>/callback

    [claims]              # which claims carry what (ID token, else userinfo)
    id_number = "id_number"
    name = "name"
    phone = "phone_number"   # optional

Matching applies the importer's rules (``connectors.matcher.decide``) to the claims as
one legacy row keyed by (system, ``sub``): same ID number and same name → linked and
signed in if the upstream verifies real names (``level`` L3 or L4), else the review
queue; a different name, an invalid number or a phone of someone else → the review
queue, no sign-in; nobody with the number → created if the upstream may create, else
refused. A ``sub`` linked before signs in by its link, whatever its claims say now (the
change is recorded).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from connectors.base import ConnectorError, LegacyRow, clean
from connectors.config import check_keys, read_table, read_toml
from connectors.importer import read_row, row_blob
from connectors.matcher import Decision, decide
from idp import audit
from idp.accounts import phone_in_use
from idp.extensions import db
from idp.identity import InvalidIdNumber, parse_person_id
from idp.models import LegacyAccount, Person, ReviewItem

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
# L1 is no real name at all; L5 needs a clerk who saw the person.
CREATE_LEVELS = ("L2", "L3", "L4")
# Levels that say the upstream checked ID number and name against the register: only
# then may its claims alone link a sign-in to an account that already exists here.
REAL_NAME_LEVELS = ("L3", "L4")
RUN_ID = "upstream-login"  # LegacyAccount.run_id of links made at sign-in, not by an import

_KEYS: dict[str, dict[str, type]] = {
    "source": {"name": str, "kind": str, "system": str, "label": str, "label_en": str},
    "oidc": {"issuer": str, "client_id": str, "client_secret": str, "client_secret_env": str,
             "token_endpoint_auth_method": str, "scope": str, "create": bool, "level": str,
             "redirect_uri": str},
    "claims": {"id_number": str, "name": str, "phone": str},
}


@dataclass(frozen=True)
class Upstream:
    name: str
    system: str
    label: str
    label_en: str
    issuer: str
    client_id: str
    client_secret: str | None
    auth_method: str
    scope: str
    create: bool
    level: str
    redirect_uri: str | None
    id_claim: str
    name_claim: str
    phone_claim: str | None

    @property
    def metadata_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"


# -- configuration -----------------------------------------------------------------------

def _table(doc: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = read_table(doc, key, where, required=False)
    check_keys(value, _KEYS[key], where, key)
    return value


def upstream_from_dict(doc: Mapping[str, Any], *, where: str = "config") -> Upstream:
    """An upstream from a parsed configuration; every problem names the file and key."""
    if not isinstance(doc, Mapping):
        raise ConnectorError(f"{where}: an upstream must be a table, not {type(doc).__name__}")
    unknown = sorted(set(doc) - set(_KEYS))
    if unknown:
        raise ConnectorError(f"{where}: unknown table(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(_KEYS)}")
    src, oidc, claims = (_table(doc, k, where) for k in ("source", "oidc", "claims"))
    name = src.get("name", "").strip()
    if not NAME_RE.match(name):
        raise ConnectorError(f"{where}: [source] name must be 1-32 of a-z, 0-9, '-', '_' "
                             f"(it is part of a URL), not {name!r}")
    if src.get("kind", "").strip().lower() != "oidc":
        raise ConnectorError(f"{where}: [source] kind must be \"oidc\"")
    for key in ("issuer", "client_id"):
        if not oidc.get(key, "").strip():
            raise ConnectorError(f"{where}: [oidc] {key} is required")
    issuer = oidc["issuer"].strip().rstrip("/")
    if not issuer.startswith(("https://", "http://")):
        raise ConnectorError(f"{where}: [oidc] issuer must be an https:// URL")
    if "client_secret" in oidc and "client_secret_env" in oidc:
        raise ConnectorError(f"{where}: [oidc] has both client_secret and client_secret_env")
    secret = oidc.get("client_secret")
    if "client_secret_env" in oidc:
        secret = os.environ.get(oidc["client_secret_env"])
        if not secret:
            raise ConnectorError(f"{where}: [oidc] client_secret_env names "
                                 f"{oidc['client_secret_env']!r}, which is not set")
    method = oidc.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ConnectorError(f"{where}: [oidc] token_endpoint_auth_method must be one of "
                             f"{', '.join(AUTH_METHODS)}")
    if method != "none" and not secret:
        raise ConnectorError(f"{where}: [oidc] client_secret (or client_secret_env) is "
                             f"required for {method}")
    level = oidc.get("level", "L2")
    if level not in CREATE_LEVELS:
        raise ConnectorError(f"{where}: [oidc] level must be one of {', '.join(CREATE_LEVELS)}")
    scope = oidc.get("scope", "openid profile").split()
    if "openid" not in scope:
        raise ConnectorError(f"{where}: [oidc] scope must include openid")
    label = src.get("label", "").strip() or name
    return Upstream(
        name=name, system=src.get("system", "").strip() or name, label=label,
        label_en=src.get("label_en", "").strip() or label, issuer=issuer,
        client_id=oidc["client_id"].strip(), client_secret=secret if method != "none" else None,
        auth_method=method, scope=" ".join(scope), create=oidc.get("create", False),
        level=level, redirect_uri=oidc.get("redirect_uri", "").strip() or None,
        id_claim=claims.get("id_number", "id_number").strip(),
        name_claim=claims.get("name", "name").strip(),
        phone_claim=claims.get("phone", "").strip() or None)


def load_upstream(path: str | os.PathLike[str]) -> Upstream:
    return upstream_from_dict(read_toml(path, "upstream config"), where=str(path))


def load_all(entries: Any, *, base: str | os.PathLike[str] = ".") -> dict[str, Upstream]:
    """The ``UPSTREAM_IDPS`` setting: TOML file paths (relative ones against ``base``, the
    instance folder) and/or tables of the same shape. Names must be unique."""
    if entries in (None, ""):
        return {}
    if isinstance(entries, str | Mapping):
        entries = [entries]
    found: dict[str, Upstream] = {}
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            up = load_upstream(Path(base) / entry)
        else:
            up = upstream_from_dict(entry, where=f"UPSTREAM_IDPS[{i}]")
        if up.name in found:
            raise ConnectorError(f"two upstream providers are named {up.name!r}")
        # Links are keyed by (system, upstream sub): two providers sharing a system would
        # sign people in through each other's links.
        clash = next((u.name for u in found.values() if u.system == up.system), None)
        if clash:
            raise ConnectorError(f"upstream providers {clash!r} and {up.name!r} share the "
                                 f"system name {up.system!r}; give each its own")
        found[up.name] = up
    return found


# -- matching and linking ----------------------------------------------------------------

@dataclass
class Outcome:
    action: str  # signin | review | refused
    rule: str
    person: Person | None = None
    account: LegacyAccount | None = None
    created: bool = False  # a new person was made from the claims
    linked: bool = False  # the link was made just now
    changed: list[str] | None = None  # claims that changed since the link was made


def _claim(claims: Mapping[str, Any], name: str | None) -> str | None:
    if not name:
        return None
    value = claims.get(name)
    return clean(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def claims_row(upstream: Upstream, claims: Mapping[str, Any]) -> LegacyRow:
    """The verified claims as one legacy row of the upstream's system, keyed by ``sub``."""
    values = {"legacy_id": _claim(claims, "sub"), "name": _claim(claims, upstream.name_claim),
              "id_number": _claim(claims, upstream.id_claim),
              "phone": _claim(claims, upstream.phone_claim)}
    if not values["legacy_id"]:
        raise ConnectorError("the upstream's claims have no sub")
    return LegacyRow(source=upstream.system, raw=dict(values), **values)


def _changed_fields(account: LegacyAccount, row: LegacyRow) -> list[str]:
    try:
        before = read_row(account)
    except Exception:  # noqa: BLE001 - an unreadable old row: say everything changed
        before = {}
    return [f for f in ("name", "id_number", "phone") if before.get(f) != getattr(row, f)]


def _account(upstream: Upstream, sub: str) -> LegacyAccount | None:
    return db.session.scalar(db.select(LegacyAccount).where(
        LegacyAccount.source == upstream.system, LegacyAccount.legacy_id == sub))


def link(upstream: Upstream, claims: Mapping[str, Any]) -> Outcome:
    """Decide and record what a verified sign-in at ``upstream`` means here (committed).

    Two first sign-ins of one ``sub`` at once race on the (source, legacy id) key; the
    loser finds the winner's link on its second try."""
    try:
        return _link(upstream, claims)
    except IntegrityError:
        db.session.rollback()
        return _link(upstream, claims)


def _link(upstream: Upstream, claims: Mapping[str, Any]) -> Outcome:
    row = claims_row(upstream, claims)
    fingerprint = row.fingerprint()
    account = _account(upstream, row.legacy_id)
    now = time.time()

    if account is not None and account.state in ("merged", "created") and account.person_id:
        return _by_link(upstream, account, row, fingerprint, now)
    if account is not None and account.state == "rejected":
        return Outcome("refused", "rejected_by_review", account=account)
    if account is not None and account.fingerprint == fingerprint and account.state in (
            "queued", "invalid"):
        return Outcome("review", account.rule, account=account)  # still waiting, nothing new
    if not row.id_number or not row.name:
        return Outcome("refused", "missing_claims")

    decision = decide(row, trusted=upstream.create)
    if decision.action == "queue" and decision.rule == "no_match_untrusted_source":
        return Outcome("refused", decision.rule)
    if decision.action == "merge" and upstream.level not in REAL_NAME_LEVELS:
        # An upstream that does not verify real names lets its users type any ID number
        # and name: taking over the local account that holds them needs an administrator.
        decision = Decision("queue", "upstream_not_real_name", candidates=[decision.person_id],
                            id_number=decision.id_number, phone=decision.phone)

    if account is None:
        account = LegacyAccount(source=upstream.system, legacy_id=row.legacy_id,
                                first_seen=now, state="new", rule="")
        db.session.add(account)
    else:
        # New claims answer the older open question about this account.
        db.session.execute(db.update(ReviewItem).where(
            ReviewItem.legacy_account_id == account.id, ReviewItem.state == "pending")
            .values(state="superseded"))
    account.fingerprint, account.row_enc = fingerprint, row_blob(row)
    account.last_seen, account.run_id, account.rule = now, RUN_ID, decision.rule
    account.password_hash = None

    outcome = Outcome("signin", decision.rule, account=account, linked=True)
    if decision.action == "create":
        person = Person(id=uuid.uuid4().hex, id_kind=parse_person_id(decision.id_number).kind,
                        name=row.name[:128], status="active", password_hash=None,
                        assurance_level=upstream.level,
                        assurance_method=f"upstream:{upstream.name}"[:32],
                        assurance_verified_at=now)
        person.id_number = decision.id_number
        if decision.phone and not phone_in_use(decision.phone):
            person.phone = decision.phone
        db.session.add(person)
        account.person_id, account.state = person.id, "created"
        outcome.person, outcome.created = person, True
    elif decision.action == "merge":
        person = db.session.get(Person, decision.person_id)
        if person.status != "active":
            db.session.rollback()
            return Outcome("refused", "person_inactive")
        account.person_id, account.state = person.id, "merged"
        outcome.person = person
    else:
        invalid = decision.rule.startswith("invalid_")
        account.person_id, account.state = None, "invalid" if invalid else "queued"
        db.session.flush()
        db.session.add(ReviewItem(legacy_account_id=account.id, reason=decision.rule,
                                  candidates=decision.candidates))
        outcome.action, outcome.linked = "review", False
    db.session.commit()

    details = {"source": upstream.system, "legacy_id": row.legacy_id, "rule": decision.rule,
               "state": account.state}
    if outcome.action == "signin":
        audit.record("legacy.linked", actor=outcome.person.id, subject=outcome.person.id,
                     details={**details, "created_person": outcome.created,
                              "level": outcome.person.assurance_level})
    else:
        audit.record("legacy.queued", actor="system", details={
            **details, "candidates": len(decision.candidates)})
    return outcome


def _by_link(upstream: Upstream, account: LegacyAccount, row: LegacyRow, fingerprint: str,
             now: float) -> Outcome:
    person = db.session.get(Person, account.person_id)
    if person is None or person.status != "active":
        return Outcome("refused", "person_inactive", account=account)
    changed = _changed_fields(account, row) if account.fingerprint != fingerprint else []
    if account.fingerprint != fingerprint:
        account.fingerprint, account.row_enc = fingerprint, row_blob(row)
    account.last_seen = now
    db.session.commit()
    if changed:
        # The link stands (it was verified when made); the new claims are kept and an
        # administrator can see what the upstream now says.
        differs = False
        if "id_number" in changed and row.id_number:
            try:
                differs = parse_person_id(row.id_number).number != person.id_number
            except InvalidIdNumber:
                differs = True
        audit.record("legacy.claims_changed", actor=person.id, subject=person.id,
                     details={"source": upstream.system, "legacy_id": row.legacy_id,
                              "fields": changed, "id_number_differs": differs})
    return Outcome("signin", "linked_sub", person=person, account=account, changed=changed)
