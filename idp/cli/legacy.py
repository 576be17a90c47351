"""``idp legacy import`` (the review queue's ``idp merge …`` is in :mod:`idp.cli.merge`)."""

from __future__ import annotations

import os
import time

import click

from connectors.importer import BATCH_SIZE

from .common import app_context, emit, fail
from .progress import Progress


@click.group("legacy")
def legacy() -> None:
    """Accounts of older government systems."""


def _counts(s) -> str:
    return (f"合并 merged {s.merged:,}  新建 created {s.created:,}  待审核 queued {s.queued:,}  "
            f"无效 invalid {s.invalid:,}  未变 unchanged {s.unchanged:,}  "
            f"跳过 skipped {s.skipped_rows:,}  重复 repeated {s.repeated:,}")


def _default_report(instance_path: str, source: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return os.path.join(instance_path, "import-rejects", f"{safe}-{stamp}.csv")


@legacy.command("import")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The source's TOML file (connectors/config.py).")
@click.option("--dry-run", is_flag=True,
              help="Decide everything, write nothing; reports what the real run will do.")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True,
              type=click.IntRange(1, 100_000))
@click.option("--reject-report", "reject_report", default=None,
              type=click.Path(dir_okay=False, writable=True),
              help="CSV of every rejected or suspicious row (where, masked legacy id, "
                   "reason). Default: instance/import-rejects/<source>-<time>.csv, "
                   "written only when there is a reject.")
@click.option("--progress-interval", default=10.0, show_default=True,
              type=click.FloatRange(0, 3600),
              help="Seconds between progress lines when stderr is not a terminal.")
@click.option("--workers", default=None, type=click.IntRange(0, 64),
              help="Processes that parse and encrypt rows ahead of the writes; 0 runs in "
                   "this process alone (faster on a machine whose other cores are busy). "
                   "Default: one per core for sources of 20,000 rows or more.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@click.option("--json", "as_json", is_flag=True)
def legacy_import(config_path: str, dry_run: bool, batch_size: int, reject_report: str | None,
                  workers: int | None, progress_interval: float, quiet: bool,
                  as_json: bool) -> None:
    from flask import current_app

    from connectors.base import ConnectorError
    from connectors.config import load_source
    from connectors.importer import run_import

    try:
        source = load_source(config_path)
    except ConnectorError as exc:
        fail(str(exc), as_json)
    bar = None

    def progress(s) -> None:
        if bar is not None:
            bar.update(s.done, s.total, s)

    with app_context():
        report = reject_report or _default_report(current_app.instance_path, source.name)
        if not quiet:  # started here, so the rate leaves out the app's start-up
            bar = Progress(interval=progress_interval, detail=_counts)
        try:
            summary = run_import(source, dry_run=dry_run, batch_size=batch_size,
                                 progress=progress, reject_report=report, workers=workers)
        except ConnectorError as exc:
            fail(str(exc), as_json)
        except OSError as exc:  # the reject report could not be written
            fail(f"cannot write the reject report {report}: {exc.strerror or exc}", as_json)
    if bar is not None:
        bar.update(summary.done, summary.total, summary, final=True)
    out = summary.as_dict()
    text = "\n".join(f"{k}: {v}" for k, v in out.items())
    if summary.rejected:
        text += (f"\n{summary.rejected:,} 行被拒绝或可疑 rows rejected or suspicious; "
                 f"见 see {summary.reject_report or '(no report file)'}")
    emit(out, as_json, text)
