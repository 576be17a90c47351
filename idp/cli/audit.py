"""``idp audit verify``, ``idp audit head``, ``idp audit export`` and ``idp audit flush``.

Each of them first chains every entry recorded before it (entries are recorded into
``audit_pending`` and chained moments later; see :mod:`idp.audit.log`)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import click

from .common import app_context, emit, fail

_HEAD = re.compile(r"(\d+):([0-9a-f]{64})")


@click.group()
def audit() -> None:
    """Tamper-evident audit log (entries chained by SM3)."""


def _parse_head(value: str | None, as_json: bool) -> tuple[int, str] | None:
    if value is None:
        return None
    m = _HEAD.fullmatch(value.strip().lower())
    if not m:
        fail(f"--expected-head must be SEQ:HASH (64 hex digits), got {value!r}", as_json)
    return int(m.group(1)), m.group(2)


@audit.command("verify")
@click.option("--expected-head", metavar="SEQ:HASH",
              help="A head recorded earlier (idp audit head); detects deleted newest entries.")
@click.option("--json", "as_json", is_flag=True)
def verify_cmd(expected_head: str | None, as_json: bool) -> None:
    """Chain what is pending, then walk the whole chain; exit 1 naming the first
    altered, missing, inserted or reordered entry; exit 3 if the chain is intact but
    entries recorded before the check could not be chained (so are not protected yet)."""
    from ..audit import verify

    anchor = _parse_head(expected_head, as_json)
    with app_context():
        result = verify(expected_head=anchor)
    if as_json:
        emit(result.as_dict(), True)
    if not result.ok:
        fail(f"audit chain broken at entry {result.first_bad_seq}: {result.reason} "
             f"({result.count} entries verified before it)", as_json)
    if not as_json:
        click.echo(f"ok: {result.count} entries verified; head {result.head_seq}:"
                   f"{result.head_hash}")
    if result.pending:
        fail(f"{result.pending} recorded entries could not be chained yet, so were not "
             f"verified (see the log)", as_json, code=3)


@audit.command("flush")
@click.option("--json", "as_json", is_flag=True)
def flush_cmd(as_json: bool) -> None:
    """Chain every entry recorded so far (the servers do this within seconds anyway)."""
    from ..audit import flush, pending_count

    with app_context():
        chained = flush()
        left = pending_count()
    emit({"chained": chained, "pending": left}, as_json,
         f"chained {chained} entries; {left} pending")


@audit.command("head")
@click.option("--json", "as_json", is_flag=True)
def head_cmd(as_json: bool) -> None:
    """Print the newest entry as SEQ:HASH; keep it outside the database."""
    from ..audit import head

    with app_context():
        seq, digest = head()
    emit({"seq": seq, "hash": digest}, as_json, f"{seq}:{digest}")


def parse_time(value: str) -> float:
    """Unix seconds, or ISO 8601 (UTC unless it carries an offset such as +08:00)."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        # float() also reads "nan", "inf" and "1e999": no moment in time, and "nan"
        # compares false with everything, so an export would silently match nothing.
        if not math.isfinite(seconds):
            raise ValueError(f"not a time: {value!r} (Unix seconds must be a finite number)")
        return seconds
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time or Unix seconds: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@audit.command("export")
@click.option("--since", required=True, metavar="TIME",
              help="ISO 8601 (UTC unless an offset is given) or Unix seconds; inclusive.")
@click.option("--until", metavar="TIME", help="Same forms; exclusive. Default: now and later.")
@click.option("--json", "as_json", is_flag=True,
              help="Errors as JSON (the output is always JSON lines).")
def export_cmd(since: str, until: str | None, as_json: bool) -> None:
    """Entries as JSON lines, in chain order, for a SIEM.

    Each line is the canonical form plus "hash", so the receiver can re-hash every line
    and check that each prev_hash is the previous line's hash (see idp.audit.chain)."""
    from ..audit import export, export_line

    try:
        start = parse_time(since)
        end = parse_time(until) if until is not None else None
    except ValueError as exc:
        fail(str(exc), as_json)
    if end is not None and end <= start:
        fail("--until must be later than --since", as_json)
    with app_context():
        for entry in export(start, end):
            click.echo(export_line(entry))
