"""Bringing a database to the current schema, with keys, on first start."""

from __future__ import annotations

from flask import current_app
from flask_migrate import upgrade

from .crypto.keys import SIGNING_ALGS, ensure_keys


def initialise() -> list[str]:
    """Apply migrations and make any missing signing keys; returns new key ids."""
    upgrade(directory=current_app.extensions["migrate"].directory)
    # The data keys this database's data was written with, stored wrapped under the KEK
    # (a no-op once stored; see idp.crypto.envelope).
    from .crypto.envelope import adopt

    adopt(current_app.extensions["idp.fieldcrypto"].ring)
    # Every algorithm a client may choose gets a key from the first start, so
    # national cryptography (SM2SM3) is there without a separate step.
    algs = sorted({current_app.config["ACCESS_TOKEN_ALG"],
                   current_app.config["DEFAULT_ID_TOKEN_ALG"], *SIGNING_ALGS})
    made = ensure_keys(algs)
    current_app.extensions["idp.keys"].invalidate()
    return [k.kid for k in made]
