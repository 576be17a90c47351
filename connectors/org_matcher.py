"""Organisation rows of a legacy export: an enterprise's unified social credit code
(GB 32100) and/or its pre-2015 organisation code (GB 11714), matched onto the
organisations we know.

The credit code embeds the organisation code in positions 9-17, which is how an old
code finds the organisation it became. A full, valid credit code is an identifier we
may act on (merge, or create from a trusted source); an old code alone is not enough to
register anybody and goes to review ("org_code_only") unless exactly one organisation
already embeds it. Wrong check characters are never guessed at: the row is invalid.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import String, func, literal_column

from idp.extensions import db
from idp.identity import (
    InvalidCreditCode,
    InvalidOrgCode,
    normalize_identifier,
    parse_credit_code,
    parse_org_code,
)
from idp.models import Organisation

from .bulk import among
from .matcher import Decision, same_name


def is_org_row(row, entity: str) -> bool:
    """Per ``[source] entity`` (connectors.base.ENTITIES); "auto": a row with an
    organisation or credit code and no ID number is an organisation."""
    if entity == "organisation":
        return True
    if entity == "person":
        return False
    return not row.id_number and bool(row.credit_code or row.org_code)


@dataclass(slots=True)
class OrgPrepared:
    credit_code: str | None = None  # validated, canonical
    org_type: str = ""
    org_code: str | None = None  # validated 9 characters, no hyphen
    error: str | None = None  # the rule when a code is invalid or the two disagree


def prepare_org(row) -> OrgPrepared:
    prep = OrgPrepared()
    credit = normalize_identifier(row.credit_code or "") or None
    old = normalize_identifier(row.org_code or "") or None
    # Old systems put whichever code they had in whichever column: go by length.
    if credit and len(credit) == 9 and not old:
        credit, old = None, credit
    elif old and len(old) == 18 and not credit:
        credit, old = old, None
    if credit:
        try:
            parsed = parse_credit_code(credit)
        except InvalidCreditCode as exc:
            prep.error = f"invalid_credit_code:{exc.code}"
            return prep
        prep.credit_code, prep.org_type = parsed.code, parsed.org_type_name
    if old:
        try:
            prep.org_code = parse_org_code(old).code
        except InvalidOrgCode as exc:
            prep.error = f"invalid_org_code:{exc.code}"
            return prep
    if prep.credit_code and prep.org_code and prep.credit_code[8:17] != prep.org_code:
        prep.error = "org_code_mismatch"
    elif prep.credit_code:
        prep.org_code = prep.credit_code[8:17]
    return prep


@dataclass(slots=True)
class KnownOrg:
    id: str
    uscc: str
    name: str


def _embedded():
    """The organisation code inside a stored credit code (positions 9-17); migration
    0010 indexes this expression."""
    # Literal positions, not bound parameters: only the very expression the index was
    # made on lets SQLite and PostgreSQL use it.
    return func.substr(Organisation.uscc, literal_column("9"), literal_column("9"),
                       type_=String)


class Orgs:
    """The organisations a batch may match: by credit code, and by the organisation
    code their credit code embeds. One indexed query each per batch."""

    def __init__(self, prepared) -> None:
        self.by_uscc: dict[str, KnownOrg] = {}
        self.by_org_code: dict[str, list[KnownOrg]] = {}
        codes = {p.credit_code for p in prepared if p.credit_code}
        olds = {p.org_code for p in prepared if p.org_code}
        columns = (Organisation.id, Organisation.uscc, Organisation.name)
        for column, wanted in ((Organisation.uscc, codes), (_embedded(), olds)):
            if wanted:
                for row in db.session.execute(db.select(*columns).where(among(column, wanted))):
                    self.add(KnownOrg(*row))

    def add(self, org: KnownOrg) -> None:
        if org.uscc in self.by_uscc:
            return
        self.by_uscc[org.uscc] = org
        self.by_org_code.setdefault(org.uscc[8:17], []).append(org)


def decide_org(row, prep: OrgPrepared, orgs: Orgs, *, trusted: bool,
               registry=None) -> Decision:
    """``registry`` (an ``idp.orgs.OrgRegistry``) is asked for the registered name and
    type only when a trusted source's new organisation comes without a name."""
    if prep.error:
        return Decision("queue", prep.error)
    if prep.credit_code:
        org = orgs.by_uscc.get(prep.credit_code)
        if org is not None:
            return Decision("merge", "org_credit_code", org_id=org.id)
        others = orgs.by_org_code.get(prep.org_code, [])
        if others:
            # Same organisation code under another credit code: a re-registration or a
            # typo upstream; a person must look.
            return Decision("queue", "org_code_of_another_org",
                            candidates=[o.id for o in others])
        if not trusted:
            return Decision("queue", "org_no_match_untrusted_source")
        name, org_type = (row.name or "").strip(), prep.org_type
        if not name and registry is not None:
            record = registry.lookup(prep.credit_code)
            if record is not None:
                name, org_type = record.name, record.org_type or org_type
        if not name:
            return Decision("queue", "org_name_unknown")
        return Decision("create", "org_trusted_source_new", org_name=name, org_type=org_type)
    if prep.org_code:
        found = orgs.by_org_code.get(prep.org_code, [])
        if len(found) > 1:
            return Decision("queue", "org_ambiguous_org_code", candidates=[o.id for o in found])
        if found:
            org = found[0]
            if not row.name or same_name(org.name, row.name):
                return Decision("merge", "org_code_in_credit_code", org_id=org.id)
            return Decision("queue", "org_code_name_differs", candidates=[org.id])
        return Decision("queue", "org_code_only")
    return Decision("queue", "org_no_code")
