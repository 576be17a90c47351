"""Small helpers the console's pages share."""

from __future__ import annotations

from flask import request

PER_PAGE = 25


def page_arg(name: str = "page") -> int:
    """A page number from the query string: plain digits, 1 to 1 000 000, else 1."""
    raw = request.args.get(name, "1")
    if raw.isascii() and raw.isdigit() and len(raw) <= 7:
        return max(1, min(int(raw), 1_000_000))
    return 1


def pages(total: int, per_page: int = PER_PAGE) -> int:
    return max(1, -(-total // per_page))


def reason() -> str:
    return request.form.get("reason", "").strip()[:500]
