"""What is special to each channel: the mobile app, QR scan-to-login, kiosks, service-hall
counters and hotlines. Every path ends in the same tokens from the same issuer; a
``channel`` claim says where, ``amr`` how and ``acr`` how strongly.

Each module has ``register(app, server)``: it adds its grants to the Authlib server,
its blueprint to the app and its discovery fields (``idp.oidc.metadata.publish``).
"""

from __future__ import annotations

import importlib

CHANNEL_MODULES = ("app_api", "qr", "device", "kiosk", "ciba")


def demos_enabled(cfg) -> bool:
    """Whether the channel demo pages are served (kiosk screen, counter and hotline
    consoles, app simulator). They let whoever reaches them sign anyone in at a kiosk
    or push requests to any citizen, so they are off unless asked for:
    ``idp serve --demo`` (``scripts/run-demo.sh``) or ``IDP_CHANNEL_DEMOS=true``."""
    return config_flag(cfg.get("CHANNEL_DEMOS"))


def config_flag(value) -> bool:
    """A yes/no setting that may come from the environment as text ("true", "0", …)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def no_store_json(body: dict, status: int = 200):
    """A JSON answer no cache keeps (tickets, approvals and their states)."""
    from flask import jsonify

    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app, server) -> None:
    for name in CHANNEL_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app, server)
