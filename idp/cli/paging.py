"""Paging for the listing commands: ``--page``/``--per-page`` and the line that says
which rows were shown of how many, so a listing never stops silently."""

from __future__ import annotations

from dataclasses import dataclass

import click

MAX_PER_PAGE = 1000


def paging_options(command):
    command = click.option("--per-page", default=50, show_default=True,
                           type=click.IntRange(1, MAX_PER_PAGE))(command)
    return click.option("--page", default=1, show_default=True,
                        type=click.IntRange(1, 10_000_000))(command)


@dataclass(frozen=True)
class PageNote:
    text: str
    truncated: bool  # more rows match than this page shows
    next_page: int | None


def page_note(page: int, per_page: int, shown: int, total: int, what: str) -> PageNote:
    first = (page - 1) * per_page
    more = first + shown < total
    if not total:
        text = f"(0 {what})"
    elif not shown:
        text = f"(page {page} is past the end: {total:,} {what} in all)"
    else:
        text = f"({first + 1:,}–{first + shown:,} of {total:,} {what}"
        text += f"; next: --page {page + 1})" if more else ")"
    return PageNote(text=text, truncated=more, next_page=page + 1 if more else None)
