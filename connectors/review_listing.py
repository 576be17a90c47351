"""What the console, its API and ``idp merge list`` show of the review queue: always masked.

Names keep their first character, ID numbers their region and last four, phones their
carrier prefix and last four (``idp.identity.masking``). The legacy id and source are
the old system's keys, not personal data, and are shown as they are.

An organisation's name and credit code are not personal data and are shown in full —
except a type-92 code (个体工商户, a business that is one natural person), masked with
its name like a person's. A legal representative is a person: masked name only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from connectors.importer import read_row
from connectors.merge import merged_into, row_id
from connectors.review import ORGANISATION, kind_of
from idp.extensions import db
from idp.identity import normalize_identifier
from idp.identity.masking import mask_credit_code, mask_id_number, mask_name, mask_phone
from idp.models import LegacyAccount, Membership, MergeRecord, Organisation, Person, ReviewItem

PER_PAGE = 20


@dataclass
class PersonCard:
    id: str
    name: str
    id_number: str
    phone: str
    status: str
    assurance_level: str
    legacy_accounts: int
    merged_into: str | None = None


@dataclass
class OrgCard:
    id: str
    uscc: str
    name: str
    org_type: str
    status: str
    legal_rep: str | None  # masked name
    members: int  # memberships in force, the legal representative's included
    legacy_accounts: int


@dataclass
class ItemRow:
    id: int
    state: str
    reason: str
    source: str
    legacy_id: str
    name: str
    id_number: str
    phone: str
    candidates: list[str]
    decided_by: str | None
    decided_at: float | None
    created_at: float
    kind: str = "person"  # or "organisation": then candidates are organisation ids
    credit_code: str = ""
    org_code: str = ""


@dataclass
class ItemDetail:
    item: ItemRow
    account_state: str
    linked: PersonCard | OrgCard | None
    candidates: list[PersonCard] | list[OrgCard] = field(default_factory=list)
    merge_record: int | None = None
    kind: str = "person"

    def as_dict(self) -> dict:
        return asdict(self)


def person_card(person: Person) -> PersonCard:
    count = db.session.scalar(db.select(db.func.count()).select_from(LegacyAccount).where(
        LegacyAccount.person_id == person.id)) or 0
    return PersonCard(id=person.id, name=mask_name(person.name),
                      id_number=mask_id_number(person.id_number),
                      phone=mask_phone(person.phone or ""), status=person.status,
                      assurance_level=person.assurance_level, legacy_accounts=count,
                      merged_into=merged_into(person.id) if person.status == "merged" else None)


def _natural_person(code: str) -> bool:
    return code.startswith("92")


def show_code(code: str) -> str:
    return mask_credit_code(code) if _natural_person(code) else code


def org_card(org: Organisation) -> OrgCard:
    members = [m for m in db.session.scalars(db.select(Membership).where(
        Membership.org_id == org.id)) if m.is_valid()]
    rep_id = next((m.person_id for m in members if m.role == "legal_rep"), None)
    rep = db.session.get(Person, rep_id) if rep_id else None
    count = db.session.scalar(db.select(db.func.count()).select_from(LegacyAccount).where(
        LegacyAccount.org_id == org.id)) or 0
    natural = _natural_person(org.uscc)
    return OrgCard(id=org.id, uscc=show_code(org.uscc),
                   name=mask_name(org.name) if natural else org.name, org_type=org.org_type,
                   status=org.status, legal_rep=mask_name(rep.name) if rep else None,
                   members=len(members), legacy_accounts=count)


def _row(item: ReviewItem, account: LegacyAccount) -> ItemRow:
    try:
        row = read_row(account)
    except (ValueError, KeyError):
        row = {}  # an unreadable blob is shown as empty, not as an error page
    name = row.get("name") or ""
    extra: dict = {}
    if kind_of(item, account) == ORGANISATION:
        credit = normalize_identifier(row.get("credit_code") or "")
        old = normalize_identifier(row.get("org_code") or "")
        natural = _natural_person(credit)
        extra = {"kind": ORGANISATION, "credit_code": show_code(credit),
                 # An old code sits inside a type-92 credit code: hidden with it.
                 "org_code": mask_id_number(old) if natural else old}
        name = mask_name(name) if natural else name.strip()
    else:
        name = mask_name(name)
    return ItemRow(id=item.id, state=item.state, reason=item.reason, source=account.source,
                   legacy_id=account.legacy_id, name=name,
                   id_number=mask_id_number(row.get("id_number") or ""),
                   phone=mask_phone(row.get("phone") or ""), candidates=list(item.candidates),
                   decided_by=item.decided_by, decided_at=item.decided_at,
                   created_at=item.created_at, **extra)


def _filtered(state: str | None, source: str | None, reason: str | None):
    query = db.select(ReviewItem, LegacyAccount).join(
        LegacyAccount, LegacyAccount.id == ReviewItem.legacy_account_id)
    if state and state != "all":
        query = query.where(ReviewItem.state == state)
    if source:
        query = query.where(LegacyAccount.source == source)
    if reason:
        query = query.where(ReviewItem.reason == reason)
    return query


def list_items(state: str | None = "pending", source: str | None = None,
               reason: str | None = None, page: int = 1,
               per_page: int = PER_PAGE) -> tuple[list[ItemRow], int]:
    query = _filtered(state, source, reason)
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery())) or 0
    rows = db.session.execute(query.order_by(ReviewItem.id)
                              .offset((max(page, 1) - 1) * per_page).limit(per_page))
    return [_row(item, account) for item, account in rows], total


def filter_choices() -> tuple[list[str], list[str]]:
    sources = list(db.session.scalars(db.select(LegacyAccount.source).distinct()
                                      .order_by(LegacyAccount.source)))
    reasons = list(db.session.scalars(db.select(ReviewItem.reason).distinct()
                                      .order_by(ReviewItem.reason)))
    return sources, reasons


def detail(item_id: int) -> ItemDetail | None:
    item = db.session.get(ReviewItem, item_id) if row_id(item_id) else None
    if item is None:
        return None
    account = db.session.get(LegacyAccount, item.legacy_account_id)
    if kind_of(item, account) == ORGANISATION:
        org = db.session.get(Organisation, account.org_id) if account.org_id else None
        orgs = [o for oid in item.candidates if (o := db.session.get(Organisation, oid))]
        return ItemDetail(item=_row(item, account), account_state=account.state,
                          linked=org_card(org) if org else None,
                          candidates=[org_card(o) for o in orgs], kind=ORGANISATION)
    linked = db.session.get(Person, account.person_id) if account.person_id else None
    cards = []
    for pid in item.candidates:
        person = db.session.get(Person, pid)
        if person is not None:
            cards.append(person_card(person))
    return ItemDetail(item=_row(item, account), account_state=account.state,
                      linked=person_card(linked) if linked else None, candidates=cards,
                      merge_record=(item.outcome or {}).get("merge_record"))


def merge_records(limit: int = 100) -> list[MergeRecord]:
    return list(db.session.scalars(db.select(MergeRecord).order_by(MergeRecord.id.desc())
                                   .limit(limit)))
