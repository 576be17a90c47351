"""``idp legacy import`` (the review queue's ``idp merge …`` is in :mod:`idp.cli.merge`)."""

from __future__ import annotations

import sys

import click

from connectors.importer import BATCH_SIZE

from .common import app_context, emit, fail


@click.group("legacy")
def legacy() -> None:
    """Accounts of older government systems."""


@legacy.command("import")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The source's TOML file (connectors/config.py).")
@click.option("--dry-run", is_flag=True, help="Decide everything, write nothing.")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True,
              type=click.IntRange(1, 100_000))
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

