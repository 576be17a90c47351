"""Run the WSGI app under gunicorn from the ``idp serve`` command."""

from __future__ import annotations

import os
import shutil
import tempfile

from gunicorn.app.base import BaseApplication

# SIGTERM: stop accepting, let requests in flight finish for up to this many seconds.
GRACEFUL_TIMEOUT = 30


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


def metrics_dir() -> tuple[str, bool]:
    """The directory prometheus-client's multi-process mode shares between the workers,
    emptied of a previous run's files; and whether we made it (then we remove it)."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):  # another run's counters would be added to ours
                os.unlink(os.path.join(given, name))
        return given, False
    return tempfile.mkdtemp(prefix="idp-metrics-"), True


def _child_exit(_server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def run(host: str, port: int, workers: int, threads: int,
        worker_class: str = "gthread") -> None:
    directory, made = metrics_dir()
    master = os.getpid()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # read by each worker's idp.metrics
    try:
        _App({
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": worker_class,
            "accesslog": "-",
            "errorlog": "-",
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "timeout": 60,
            "child_exit": _child_exit,
            # gunicorn's control socket defaults to one path per user, which several
            # instances on one host would share (and delete on each other's exit).
            "control_socket_disable": True,
        }).run()
    finally:
        # A worker is forked inside run() and leaves it by SystemExit through this very
        # block: only the master may remove the directory (a worker stopped by a rolling
        # restart removed it under the new workers, whose every request then failed).
        if made and os.getpid() == master:
            shutil.rmtree(directory, ignore_errors=True)
