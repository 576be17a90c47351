"""What the console and its API show of the review queue: always masked.

Names keep their first character, ID numbers their region and last four, phones their
carrier prefix and last four (``idp.identity.masking``). The legacy id and source are
the old system's keys, not personal data, and are shown as they are."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from connectors.importer import read_row
from connectors.merge import merged_into
from idp.extensions import db
from idp.identity.masking import mask_id_number, mask_name, mask_phone
from idp.models import LegacyAccount, MergeRecord, Person, ReviewItem

PER_PAGE = 20
STATES = ("pending", "approved", "rejected", "merged", "superseded")


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


@dataclass
class ItemDetail:
    item: ItemRow
    account_state: str
    linked: PersonCard | None
    candidates: list[PersonCard] = field(default_factory=list)
    merge_record: int | None = None

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


def _row(item: ReviewItem, account: LegacyAccount) -> ItemRow:
    try:
        row = read_row(account)
    except (ValueError, KeyError):
        row = {}  # an unreadable blob is shown as empty, not as an error page
    return ItemRow(id=item.id, state=item.state, reason=item.reason, source=account.source,
                   legacy_id=account.legacy_id, name=mask_name(row.get("name") or ""),
                   id_number=mask_id_number(row.get("id_number") or ""),
                   phone=mask_phone(row.get("phone") or ""), candidates=list(item.candidates),
                   decided_by=item.decided_by, decided_at=item.decided_at,
                   created_at=item.created_at)


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
    item = db.session.get(ReviewItem, item_id)
    if item is None:
        return None
    account = db.session.get(LegacyAccount, item.legacy_account_id)
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
