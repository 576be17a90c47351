"""Optional sampling profile of the gunicorn workers with py-spy (``--profile``).

py-spy attaches to every worker for the measured window of each of our phases and
writes collapsed stacks ("frame;frame;... count"). The summary groups samples by
library and lists the hottest frames, by self time and inclusive of callees.
Profiling takes CPU from the same two cores, so profiled runs are marked as such.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from _servers import VENV_BIN

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# First match wins; checked against the frame's file path.
GROUPS = [
    ("argon2 (password hash)", ("argon2/",)),
    ("jinja2 (templates)", ("jinja2/",)),
    ("sqlalchemy/psycopg (PostgreSQL)", ("sqlalchemy/", "psycopg/", "psycopg_pool/")),
    ("redis client", ("redis/",)),
    ("joserfc/cryptography (JWT)", ("joserfc/", "cryptography/")),
    ("authlib", ("authlib/",)),
    ("logging", ("logging/",)),
    ("flask/werkzeug", ("flask/", "werkzeug/", "flask_wtf/", "flask_babel/", "babel/",
                        "wtforms/", "itsdangerous/")),
    ("gunicorn", ("gunicorn/",)),
    ("idp (our code)", ("idp/",)),
]


def available() -> str | None:
    exe = VENV_BIN / "py-spy"
    return str(exe) if exe.exists() else shutil.which("py-spy")


def start(pids: list[int], seconds: float, outdir: Path, tag: str, mode: str = "gil",
          rate: int = 100) -> list[tuple[subprocess.Popen, Path]]:
    """``mode`` "gil": only the thread holding the GIL (where Python spends CPU; C code
    that releases the GIL, such as Argon2, is not seen); "wall": every thread that is
    not idle (includes waiting on PostgreSQL/Redis sockets and Argon2)."""
    exe = available()
    if exe is None:
        return []
    outdir.mkdir(parents=True, exist_ok=True)
    runs = []
    for pid in pids:
        out = outdir / f"pyspy-{mode}-{tag}-{pid}.txt"
        cmd = [exe, "record", "--pid", str(pid), "--format", "raw", "--output", str(out),
               "--rate", str(rate), "--duration", str(max(1, round(seconds))), "--nonblocking"]
        if mode == "gil":
            cmd.append("--gil")
        with open(out.with_suffix(".log"), "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        runs.append((proc, out))
    return runs


def finish(runs: list[tuple[subprocess.Popen, Path]]) -> list[Path]:
    files = []
    for proc, out in runs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(10)
        if out.exists():
            files.append(out)
    return files


def _frame(text: str) -> tuple[str, str, str]:
    m = FRAME.match(text.strip())
    if not m:
        return text.strip(), "", ""
    return m["func"], m["file"], m["line"] or ""


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _group(path: str) -> str:
    for name, needles in GROUPS:
        if any(n in path for n in needles):
            return name
    return "other (stdlib, interpreter)"


def summarize(files: list[Path], top: int = 15) -> dict:
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    idp_lines: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    total = 0
    for path in files:
        for raw in path.read_text(errors="replace").splitlines():
            stack, _, count = raw.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [_frame(f) for f in stack.split(";") if f]
            if not frames:
                continue
            total += n
            func, file, line = frames[-1]
            self_counts[f"{func} ({_short(file)}:{line})"] += n
            # The group of a sample: the innermost frame that belongs to a known library.
            group = "other (stdlib, interpreter)"
            for f in reversed(frames):
                g = _group(f[1])
                if g != group:
                    group = g
                    break
            groups[group] += n
            seen = set()
            seen_idp = set()
            for func, file, line in frames:
                key = f"{func} ({_short(file)})"
                if key not in seen:
                    seen.add(key)
                    incl_counts[key] += n
                if file.startswith("idp/") or "/idp/" in file:
                    k = f"{func} ({_short(file)}:{line})"
                    if k not in seen_idp:
                        seen_idp.add(k)
                        idp_lines[k] += n

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100.0 * v / total, 1)) for k, v in c.most_common(top)] if total else []

    return {
        "samples": total,
        "by_library_pct": pct(groups),
        "top_self_pct": pct(self_counts),
        "top_inclusive_pct": pct(incl_counts),
        "idp_lines_inclusive_pct": pct(idp_lines),
    }


def format_summary(tag: str, s: dict, mode: str) -> str:
    what = ("thread holding the GIL: Python CPU time" if mode == "gil"
            else "all non-idle threads: wall time, includes I/O waits")
    lines = [f"py-spy ({mode} mode): {tag}, {s['samples']} samples over all workers ({what})"]
    for title, key in (("by library (innermost known frame)", "by_library_pct"),
                       ("self time", "top_self_pct"),
                       ("our code, inclusive (file:line of the call site)",
                        "idp_lines_inclusive_pct")):
        lines.append(f"  {title}:")
        lines.extend(f"    {p:5.1f}%  {k}" for k, p in s[key][:12])
    return "\n".join(lines)
