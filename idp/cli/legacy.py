"""``idp legacy import`` and ``idp merge list|approve|reject|undo``."""

from __future__ import annotations

import sys

import click

from . import app_context, emit, fail, operator


@click.group("legacy")
def legacy() -> None:
    """Accounts of older government systems."""


@legacy.command("import")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The source's TOML file (connectors/config.py).")
@click.option("--dry-run", is_flag=True, help="Decide everything, write nothing.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True)
def legacy_import(config_path: str, dry_run: bool, batch_size: int, as_json: bool) -> None:
    from connectors.base import ConnectorError
    from connectors.config import load_source
    from connectors.importer import run_import

    try:
        source = load_source(config_path)
    except ConnectorError as exc:
        fail(str(exc), as_json)
    show = sys.stderr.isatty() and not as_json

    def progress(s) -> None:
        if show:
            click.echo(f"\r读取 read {s.read:,}  合并 merged {s.merged:,}  新建 created "
                       f"{s.created:,}  待审核 queued {s.queued:,}  无效 invalid {s.invalid:,}  "
                       f"未变 unchanged {s.unchanged:,}", nl=False, err=True)

    with app_context():
        try:
            summary = run_import(source, dry_run=dry_run, batch_size=batch_size,
                                 progress=progress)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    if show:
        click.echo("", err=True)
    out = summary.as_dict()
    emit(out, as_json, "\n".join(f"{k}: {v}" for k, v in out.items()))


@click.group("merge")
def merge() -> None:
    """The review queue of legacy accounts."""


@merge.command("list")
@click.option("--state", default="pending",
              type=click.Choice(["pending", "approved", "rejected", "superseded", "all"]))
@click.option("--json", "as_json", is_flag=True)
def merge_list(state: str, as_json: bool) -> None:
    from connectors.importer import read_row
    from idp.extensions import db
    from idp.identity.masking import mask_id_number, mask_name, mask_phone
    from idp.models import LegacyAccount, ReviewItem

    with app_context():
        query = db.select(ReviewItem, LegacyAccount).join(
            LegacyAccount, LegacyAccount.id == ReviewItem.legacy_account_id)
        if state != "all":
            query = query.where(ReviewItem.state == state)
        out = []
        for item, account in db.session.execute(query.order_by(ReviewItem.id).limit(1000)):
            row = read_row(account)
            out.append({"id": item.id, "state": item.state, "reason": item.reason,
                        "source": account.source, "legacy_id": account.legacy_id,
                        "name": mask_name(row.get("name") or ""),
                        "id_number": mask_id_number(row.get("id_number") or ""),
                        "phone": mask_phone(row.get("phone") or ""),
                        "candidates": item.candidates})
    emit(out, as_json, "\n".join(
        f"{o['id']}\t{o['state']}\t{o['reason']}\t{o['source']}:{o['legacy_id']}\t{o['name']}"
        f"\t{o['id_number']}" for o in out))


def _decide(action: str, item_id: int, as_json: bool, **kw) -> None:
    from connectors import review

    with app_context():
        try:
            item = getattr(review, action)(item_id, by=operator(), **kw)
        except review.ReviewError as exc:
            fail(str(exc), as_json)
        out = {"id": item.id, "state": item.state}
    emit(out, as_json, f"review item {out['id']}: {out['state']}")


@merge.command("approve")
@click.argument("item_id", type=int)
@click.option("--person", "person_id", default=None, help="Merge into this person (internal id).")
@click.option("--json", "as_json", is_flag=True)
def merge_approve(item_id: int, person_id: str | None, as_json: bool) -> None:
    _decide("approve", item_id, as_json, person_id=person_id)


@merge.command("reject")
@click.argument("item_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def merge_reject(item_id: int, as_json: bool) -> None:
    _decide("reject", item_id, as_json)


@merge.command("undo")
@click.argument("item_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def merge_undo(item_id: int, as_json: bool) -> None:
    _decide("undo", item_id, as_json)
