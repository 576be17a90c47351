"""Channel module 'qr' (being written; registers nothing yet)."""

from __future__ import annotations


def register(app, server) -> None:
    return None
