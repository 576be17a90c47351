"""Run the WSGI app under gunicorn from the ``idp serve`` command."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication


class _App(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # Each worker builds its own app (no preload): database pools and Redis
        # connections must not be shared across fork.
        from .. import create_app

        return create_app()


def run(host: str, port: int, workers: int, threads: int) -> None:
    _App({
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "accesslog": "-",
        "errorlog": "-",
        "graceful_timeout": 10,
        "timeout": 60,
        # gunicorn's control socket defaults to one path per user, which several
        # instances on one host would share (and delete on each other's exit).
        "control_socket_disable": True,
    }).run()
