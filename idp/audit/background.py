"""When pending audit entries get chained, without anyone waiting for it.

Per application and per process (state lives in ``app.extensions``, tagged with the
pid, so a forked gunicorn worker starts afresh — nothing is started before the first
:func:`idp.audit.record` in the worker):

* right after a ``record``, at most every :data:`OPPORTUNISTIC_EVERY` seconds, the
  recording thread makes one non-blocking pass (:func:`idp.audit.log.chain_pending`):
  if another thread of this process is already chaining, or another process holds the
  chain lock, it skips at once;
* a daemon thread, started by the first ``record`` and stopped after
  :data:`IDLE_EXIT` seconds without one, makes a pass every :data:`INTERVAL` seconds
  while this process has recorded entries that may still be pending — again without
  waiting for the lock (on SQLite, where every insert takes that lock too, waiting at
  most :data:`SQLITE_THREAD_WAIT`): a busy lock or a failure means "again next second";
* at exit of a process whose thread is running, a last drain (a few seconds at most),
  so that a short CLI command leaves nothing pending.

Entries another process recorded are chained by whichever pass comes first; ones left
by a process that died are chained by the next pass anywhere, or by
:func:`idp.audit.flush` (which ``verify``, ``export`` and ``head`` call).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref

from flask import Flask, current_app

from . import log as audit_log

#: Seconds between passes of the daemon thread while there is work.
INTERVAL = 1.0
#: At most one opportunistic pass per process (and app) this often, in seconds.
OPPORTUNISTIC_EVERY = 0.2
#: The daemon thread ends after this many seconds without a record.
IDLE_EXIT = 30.0
#: At exit, give up draining after this many seconds (the entries stay pending).
EXIT_DRAIN_SECONDS = 5.0
#: SQLite only: how long the daemon thread's pass waits for the write lock, which every
#: insert takes too (the opportunistic pass in a request thread never waits).
SQLITE_THREAD_WAIT = 0.25
#: False stops the opportunistic and background passes (tests, maintenance): entries
#: then stay pending until :func:`idp.audit.flush`.
ENABLED = True

_EXT = "idp.audit.chainer"
_log = logging.getLogger("idp.audit")
_registry_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()  # may have been held by another thread at fork


os.register_at_fork(after_in_child=_after_fork_in_child)


class Chainer:
    """The chaining state of one application in one process."""

    def __init__(self, app: Flask):
        self.app = app
        self.pid = os.getpid()
        self.wake = threading.Event()  # set: entries recorded here may be pending
        self.busy = threading.Lock()  # one pass at a time in this process
        self.mutex = threading.Lock()  # guards starting and stopping the thread
        self.thread: threading.Thread | None = None
        self.next_try = 0.0
        self.failures = 0

    def recorded(self) -> None:
        """Called by ``record`` (in the app context) after its insert committed."""
        if not ENABLED:
            return
        self.wake.set()
        thread = self.thread
        if thread is None or not thread.is_alive():
            self._start()
        now = time.monotonic()
        if now < self.next_try or not self.busy.acquire(blocking=False):
            return
        try:
            self.next_try = now + OPPORTUNISTIC_EVERY
            self._pass()
        finally:
            self.busy.release()

    def _start(self) -> None:
        with self.mutex:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="idp-audit-chainer",
                                               daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            if not self.wake.wait(IDLE_EXIT):
                with self.mutex:
                    if not self.wake.is_set():
                        self.thread = None
                        return
                continue
            time.sleep(INTERVAL)
            self.wake.clear()  # entries recorded from now on set it again
            if not ENABLED:
                continue
            try:
                with self.busy, self.app.app_context():
                    done = self._pass(wait=SQLITE_THREAD_WAIT)
            except Exception as exc:  # noqa: BLE001 - keep the thread alive
                _log.error("audit: background chaining pass failed: %s: %s",
                           type(exc).__name__, exc)
                done = None
            if done is None or done >= audit_log.CHAIN_BATCH:
                self.wake.set()  # lock busy, failed, or more to do: again next second

    def _pass(self, wait: bool | float = False) -> int | None:
        """One pass that does not wait for the chain lock (on SQLite: at most ``wait``
        seconds): rows chained, or None (lock busy, or failed)."""
        try:
            done = audit_log._chain_once(wait=wait)
        except Exception as exc:  # noqa: BLE001 - the entries are safe; logged, retried
            self.failures += 1
            if self.failures in (1, 10) or self.failures % 300 == 0:
                # No traceback: formatting one parses source (ast) on Python 3.11, which
                # is not safe beside another thread compiling; the message says enough.
                _log.error("audit: chaining pending entries failed (%d times in a row), "
                           "they stay pending and are retried: %s: %s", self.failures,
                           type(exc).__name__, exc)
            return None
        self.failures = 0
        return done

    def drain_at_exit(self) -> None:
        deadline = time.monotonic() + EXIT_DRAIN_SECONDS
        with self.app.app_context():
            while time.monotonic() < deadline:
                done = audit_log._chain_once(wait=SQLITE_THREAD_WAIT)
                if done is None:
                    time.sleep(0.05)
                elif done < audit_log.CHAIN_BATCH:
                    return


def chainer(app: Flask | None = None) -> Chainer:
    """This process's :class:`Chainer` for ``app`` (default: the current app)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get(_EXT)
    if found is not None and found.pid == os.getpid():
        return found
    with _registry_lock:
        found = app.extensions.get(_EXT)
        if found is None or found.pid != os.getpid():
            found = app.extensions[_EXT] = Chainer(app)
            atexit.register(_at_exit, weakref.ref(found))
        return found


@audit_log.on_recorded
def recorded() -> None:
    chainer().recorded()


def _at_exit(ref: weakref.ref[Chainer]) -> None:
    found = ref()
    if found is None or found.pid != os.getpid() or found.thread is None or not ENABLED:
        return
    try:
        found.drain_at_exit()
    except Exception:  # noqa: BLE001, S110 - at exit; the entries stay pending, safely
        pass
