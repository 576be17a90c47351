"""``idp merge …``: the review queue of legacy accounts (list, approve, reject, link to a
person — or an organisation, by its credit code — undo) and merging two persons who are
one citizen. The admin console decides
through the same functions (``connectors.review``, ``connectors.merge``)."""

from __future__ import annotations

import click

from connectors.review import STATES

from .common import app_context, emit, fail, operator
from .paging import page_note, paging_options

_STATES = [*STATES, "all"]


@click.group("merge")
def merge() -> None:
    """The review queue of legacy accounts; merging persons."""


@merge.command("list")
@click.option("--state", default="pending", type=click.Choice(_STATES))
@click.option("--source", default=None, help="Only this source system.")
@click.option("--rule", default=None, help="Only this rule (e.g. id_number_name_differs).")
@paging_options
@click.option("--json", "as_json", is_flag=True)
def merge_list(state: str, source: str | None, rule: str | None, page: int, per_page: int,
               as_json: bool) -> None:
    """Review items, masked as the admin console shows them, one page at a time; the
    last line (``total``/``truncated`` with --json) says how many match in all."""
    from connectors.review_listing import list_items

    with app_context():
        rows, total = list_items(state, source=source, reason=rule, page=page,
                                 per_page=per_page)
        items = [{"id": r.id, "state": r.state, "reason": r.reason, "source": r.source,
                  "legacy_id": r.legacy_id, "kind": r.kind, "name": r.name,
                  "id_number": r.id_number, "phone": r.phone, "credit_code": r.credit_code,
                  "org_code": r.org_code, "candidates": r.candidates} for r in rows]
    note = page_note(page, per_page, len(items), total, "review items")
    emit({"items": items, "page": page, "per_page": per_page, "total": total,
          "truncated": note.truncated, "next_page": note.next_page}, as_json, "\n".join([
              f"{o['id']}\t{o['state']}\t{o['reason']}\t{o['source']}:{o['legacy_id']}"
              f"\t{o['name']}\t{_key(o)}" for o in items] + [note.text]))


def _key(o: dict) -> str:
    if o["kind"] == "organisation":
        return o["credit_code"] or o["org_code"]
    return o["id_number"]


def _decide(action: str, item_id: int, as_json: bool, target: str | None = None,
            **kw) -> None:
    """``target`` names whom to link to: a person's internal id, or for an
    organisation's item the organisation's credit code."""
    from connectors import review

    with app_context():
        if target is not None:
            kw["uscc" if review.kind(item_id) == review.ORGANISATION else "person_id"] = target
        try:
            item = getattr(review, action)(item_id, by=operator(), **kw)
        except review.ReviewError as exc:
            fail(str(exc), as_json)
        out = {"id": item.id, "state": item.state}
        if action == "merge":
            out["merge_record"] = (item.outcome or {}).get("merge_record")
    emit(out, as_json, f"review item {out['id']}: {out['state']}")


_note = click.option("--note", default="", help="Why (kept in the audit log).")


@merge.command("approve")
@click.argument("item_id", type=int)
@click.option("--person", "person_id", default=None, help="Merge into this person (internal id).")
@click.option("--org", "uscc", default=None,
              help="An organisation's item: link to the organisation with this credit code.")
@_note
@click.option("--json", "as_json", is_flag=True)
def merge_approve(item_id: int, person_id: str | None, uscc: str | None, note: str,
                  as_json: bool) -> None:
    """Link to the single candidate (or --person / --org), or to a new person or
    organisation made from the row's valid ID number or credit code."""
    _decide("approve", item_id, as_json, person_id=person_id, uscc=uscc, note=note)


@merge.command("reject")
@click.argument("item_id", type=int)
@_note
@click.option("--json", "as_json", is_flag=True)
def merge_reject(item_id: int, note: str, as_json: bool) -> None:
    _decide("reject", item_id, as_json, note=note)


@merge.command("into")
@click.argument("item_id", type=int)
@click.argument("target")
@click.option("--force", is_flag=True, help="Even if the ID numbers differ (needs --note).")
@_note
@click.option("--json", "as_json", is_flag=True)
def merge_into(item_id: int, target: str, force: bool, note: str, as_json: bool) -> None:
    """Link the item's legacy account to TARGET: a person's internal id (a person it was
    linked to before is merged into them), or for an organisation's item the
    organisation's unified social credit code."""
    _decide("merge", item_id, as_json, target=target, force=force, note=note)


@merge.command("undo")
@click.argument("item_id", type=int)
@_note
@click.option("--json", "as_json", is_flag=True)
def merge_undo(item_id: int, note: str, as_json: bool) -> None:
    _decide("undo", item_id, as_json, note=note)


@merge.command("persons")
@click.argument("survivor")
@click.argument("absorbed")
@click.option("--force", is_flag=True, help="Even if the ID numbers differ (needs --reason).")
@click.option("--reason", default="")
@click.option("--json", "as_json", is_flag=True)
def merge_persons(survivor: str, absorbed: str, force: bool, reason: str, as_json: bool) -> None:
    """Merge person ABSORBED into SURVIVOR (internal ids): one citizen, two accounts."""
    from connectors import merge as person_merge

    with app_context():
        try:
            record = person_merge.merge_persons(survivor, absorbed, actor=operator(),
                                                reason=reason, force=force)
        except person_merge.MergeError as exc:
            fail(str(exc), as_json)
        out = person_merge.describe(record)
    emit(out, as_json, f"merge record {out['id']}: {out['absorbed']} → {out['survivor']} "
                       f"{out['counts']}")


@merge.command("undo-persons")
@click.argument("record_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def undo_persons(record_id: int, as_json: bool) -> None:
    """Undo a person merge: the absorbed person is active again with what was theirs."""
    from connectors import merge as person_merge

    with app_context():
        try:
            record = person_merge.undo_merge(record_id, actor=operator())
        except person_merge.MergeError as exc:
            fail(str(exc), as_json)
        out = person_merge.describe(record)
    emit(out, as_json, f"merge record {out['id']} undone")
