"""What is special to each channel: the mobile app, QR scan-to-login, kiosks, service-hall
counters and hotlines. Every path ends in the same tokens from the same issuer; a
``channel`` claim says where, ``amr`` how and ``acr`` how strongly.

Each module has ``register(app, server)``: it adds its grants to the Authlib server,
its blueprint to the app and its discovery fields (``idp.oidc.metadata.publish``).
"""

from __future__ import annotations

import importlib

CHANNEL_MODULES = ("app_api", "qr", "device", "kiosk", "ciba")


def init_app(app, server) -> None:
    for name in CHANNEL_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app, server)
