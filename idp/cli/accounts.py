"""``idp account close-due``: erase the accounts whose closing cooling-off has passed
(run it daily, e.g. from cron or a systemd timer)."""

from __future__ import annotations

import click

from .common import app_context, emit, operator


@click.group("account")
def account() -> None:
    """People's own account requests that need a scheduled step (closure)."""


@account.command("close-due")
@click.option("--dry-run", is_flag=True, help="List what is due without erasing it.")
@click.option("--json", "as_json", is_flag=True)
def close_due(dry_run: bool, as_json: bool) -> None:
    from ..account import closure

    with app_context():
        people = closure.due()
        ids = [p.id for p in people]
        erased = [] if dry_run else [
            {"person": p.id, **closure.erase(p, actor=operator())} for p in people]
    if dry_run:
        emit({"due": ids}, as_json, f"{len(ids)} account(s) due for erasure"
             + ("".join(f"\n  {i}" for i in ids)))
        return
    emit({"erased": erased}, as_json, f"erased {len(erased)} closed account(s)"
         + "".join(f"\n  {e['person']}: {e['legacy_released']} legacy link(s) released"
                   for e in erased))
