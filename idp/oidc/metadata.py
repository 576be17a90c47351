"""Discovery metadata that features add as they are registered.

Grants and endpoints outside the core (device authorization, CIBA, JWT bearer, …)
say what they add to ``/.well-known/openid-configuration`` here, next to the code that
implements it, so discovery never advertises what is not registered nor misses what is.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

_KEY = "idp.discovery"


def publish(app: Flask, **fields: Any) -> None:
    """Add discovery fields. A list extends the core's list of the same name (e.g.
    ``grant_types_supported``); anything else is set as given."""
    extra = app.extensions.setdefault(_KEY, {})
    for name, value in fields.items():
        if isinstance(value, list):
            extra.setdefault(name, [])
            extra[name].extend(v for v in value if v not in extra[name])
        else:
            extra[name] = value


def merge_into(app: Flask, doc: dict[str, Any]) -> dict[str, Any]:
    for name, value in app.extensions.get(_KEY, {}).items():
        if isinstance(value, list) and isinstance(doc.get(name), list):
            doc[name] = doc[name] + [v for v in value if v not in doc[name]]
        else:
            doc[name] = value
    return doc
