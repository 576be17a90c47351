"""Resident memory and CPU time of the processes under test, with psutil.

The machine is shared (2 cores), so besides the server's own CPU time we record
what the load generator, PostgreSQL/Redis and every other process used in the
same window: a phase with much "other" CPU was measured on a busy machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def backing_pids(pg_database: str | None) -> list[int]:
    """redis-server, and the PostgreSQL backends serving ``pg_database`` (their process
    title names the database), so other sessions' database work is not counted."""
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        name = p.info.get("name") or ""
        if name.startswith("redis-server"):
            out.append(p.pid)
        elif pg_database and name.startswith("postgres"):
            if pg_database in " ".join(p.info.get("cmdline") or []):
                out.append(p.pid)
    return out


def per_process_cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def system_busy_seconds() -> float:
    """CPU seconds spent on anything but idle/iowait, all cores together."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


class Snapshot:
    """CPU counters at one instant: server, load generator, backing services, whole machine."""

    def __init__(self, server_pids: list[int], client_pid: int | None,
                 pg_database: str | None = None):
        self.at = time.monotonic()
        self.server = per_process_cpu(server_pids)
        self.client = per_process_cpu([client_pid] if client_pid else [])
        self.backing = per_process_cpu(backing_pids(pg_database))
        self.busy = system_busy_seconds()

    @staticmethod
    def delta(a: Snapshot, b: Snapshot) -> dict[str, float]:
        def diff(x: dict[int, float], y: dict[int, float]) -> float:
            return sum(v - x.get(pid, 0.0) for pid, v in y.items())

        wall = b.at - a.at
        server = diff(a.server, b.server)
        client = diff(a.client, b.client)
        backing = diff(a.backing, b.backing)
        busy = b.busy - a.busy
        return {
            "wall_s": round(wall, 3),
            "server_cpu_s": round(server, 3),
            "client_cpu_s": round(client, 3),
            "backing_cpu_s": round(backing, 3),
            "machine_busy_s": round(busy, 3),
            "other_cpu_s": round(max(0.0, busy - server - client - backing), 3),
            "cores": psutil.cpu_count(),
        }


class RssSampler:
    """Samples the summed RSS of ``pids()`` every ``interval`` seconds in a thread."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.2):
        self.pids = pids
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pids()))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pids()))


def quiet_machine(max_wait: float, threshold: float = 0.25) -> dict[str, float]:
    """Wait (up to ``max_wait`` s) for a second in which the machine is at most
    ``threshold`` busy; return what was seen. Other sessions may share these cores."""
    if max_wait <= 0:
        return {"busy_fraction_before": round(psutil.cpu_percent() / 100.0, 2), "waited_s": 0.0}
    start = time.monotonic()
    busy = 1.0
    while True:
        busy = psutil.cpu_percent(interval=1.0) / 100.0
        waited = time.monotonic() - start
        if busy <= threshold or waited >= max_wait:
            return {"busy_fraction_before": round(busy, 2), "waited_s": round(waited, 1)}
