"""Running the Node clients (rp_flow.mjs, device_flow.mjs, ciba_flow.mjs) from a test.

Each script takes a JSON config in RP_CONFIG and talks in JSON lines on stdout: lines
such as {"paused": ...} or {"waiting": ...} while it waits for the test (which answers
with a line on stdin), and last of all its result, read with rp_result.ok/refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from .rp_result import explain

E2E_DIR = Path(__file__).resolve().parent  # the scripts and their node_modules


def ensure_node(package: str = "openid-client") -> str:
    """The node binary, after installing tests/e2e/node_modules if ``package`` is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are required for the e2e tests' Node programs "
                    "(scripts/setup.sh --test installs them)")
    if not (E2E_DIR / "node_modules" / package / "package.json").exists():
        lock = (E2E_DIR / "package-lock.json").exists()
        cmd = [npm, "ci" if lock else "install", "--no-audit", "--no-fund"]
        res = subprocess.run(cmd, cwd=E2E_DIR, capture_output=True, text=True, timeout=300,
                             check=False)
        if res.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return node


class NodeScript:
    """One run of tests/e2e/SCRIPT. ``idp`` (a LiveIdP), when given, has its log's tail
    attached to the result, so that every failure message shows the provider's side.

    A line of output is awaited at most ``timeout`` seconds: a script that hangs fails
    the test instead of blocking it."""

    def __init__(self, node: str, script: str, config: dict, *, idp: Any = None,
                 timeout: float = 60):
        self.script, self.idp, self.timeout = script, idp, timeout
        self.proc = subprocess.Popen(
            [node, str(E2E_DIR / script)], cwd=E2E_DIR,
            env={**os.environ, "RP_CONFIG": json.dumps(config)}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._ended = False
        self._last: str | None = None
        # Both pipes drained all the time: a script that writes much to stderr never
        # blocks on a full pipe while the test waits for its stdout.
        for stream, sink in ((self.proc.stdout, self._lines.put),
                             (self.proc.stderr, self._stderr.append)):
            threading.Thread(target=_pump, args=(stream, sink), daemon=True).start()

    def __enter__(self) -> NodeScript:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()

    def stderr(self, chars: int = 3000) -> str:
        return "".join(self._stderr)[-chars:]

    def _line(self) -> str | None:
        if self._ended:
            return None
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self.kill()
            pytest.fail(f"{self.script} silent for {self.timeout}s:\n{self.stderr(2000)}")
        if line is None:
            self._ended = True
        elif line.strip():
            self._last = line
        return line

    def message(self) -> dict | None:
        """The next JSON line; None once the script has ended."""
        while (line := self._line()) is not None:
            if line.strip():
                try:
                    return json.loads(line)
                except ValueError:
                    continue  # chatter, not part of the conversation
        return None

    def wait(self, key: str, name: str) -> dict:
        """The next message must be the script waiting as ``{key: name, ...}``."""
        msg = self.message()
        if msg is None or msg.get(key) != name:
            self.kill()
            pytest.fail(explain(self._with_log(msg or {}),
                                f"{self.script} did not stop at {key} {name!r}; "
                                f"stderr:\n{self.stderr(2000)}"))
        return msg

    def send(self, line: str = "continue") -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def result(self) -> dict:
        """The script's last line, once it has ended (and exited 0)."""
        if not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # it may have ended already
                self.proc.stdin.close()
        while self._line() is not None:
            pass
        try:
            self.proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.script} did not exit")
        assert self.proc.returncode == 0, (
            f"{self.script} exited {self.proc.returncode}:\n{self.stderr()}")
        try:
            out = json.loads(self._last or "")
        except ValueError:
            pytest.fail(f"{self.script} printed no JSON:\n{self._last}\n{self.stderr(2000)}")
        return self._with_log(out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _with_log(self, out: dict) -> dict:
        if self.idp is not None:
            out["_server_log"] = self.idp.log_tail(40)
        return out


def _pump(stream, sink) -> None:
    for line in stream:
        sink(line)
    sink(None)


def run_script(node: str, script: str, config: dict, *, idp: Any = None,
               timeout: float = 60) -> dict:
    """Run a script that needs nothing from the test on the way; its result."""
    with NodeScript(node, script, config, idp=idp, timeout=timeout) as run:
        return run.result()
