"""The demo set: data and two relying-party sites for the embedded default, and the
channel demo pages (kiosk screen, service-hall and hotline consoles, app simulator).

The pages let whoever reaches them sign anyone in at a kiosk or push requests to any
citizen, so they are served only when asked for (:func:`idp.channels.demos_enabled`;
the kiosk screen answers only when ``KIOSK_DEMO`` says so, see :mod:`.kiosk_demo`)."""

from __future__ import annotations


def init_app(app) -> None:
    from ..channels import demos_enabled
    from . import kiosk_demo

    kiosk_demo.register(app)
    if demos_enabled(app.config):
        from . import app_sim, ciba_demo, hall_reset

        app_sim.register(app)
        ciba_demo.register(app)
        hall_reset.register(app)
