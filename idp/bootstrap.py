"""Bringing a database to the current schema, with keys, on first start."""

from __future__ import annotations

from flask import current_app
from flask_migrate import upgrade

from .crypto.keys import ensure_keys


def initialise() -> list[str]:
    """Apply migrations and make any missing signing keys; returns new key ids."""
    upgrade(directory=current_app.extensions["migrate"].directory)
    algs = sorted({current_app.config["ACCESS_TOKEN_ALG"],
                   current_app.config["DEFAULT_ID_TOKEN_ALG"], "ES256", "RS256"})
    made = ensure_keys(algs)
    current_app.extensions["idp.keys"].invalidate()
    return [k.kid for k in made]
