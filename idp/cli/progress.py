"""Progress of a long command (``idp legacy import``) on stderr.

On a terminal: one line redrawn in place — a bar, the percentage, records done of the
total, the rate and the time left. Piped or redirected (a cron job's log, CI): a plain
line every ``interval`` seconds and one at the end, because carriage returns in a log
file are noise. Without a known total only the count and the rate are shown.

The clock is a parameter so that a test can drive it; nothing here sleeps.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import IO, Any

BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    def __init__(self, stream: IO[str] | None = None, *, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 detail: Callable[[Any], str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.interval = interval
        self.clock = clock
        self.detail = detail
        self.started = clock()
        self._last_line = None  # when the last piped line was written
        self._drawn = False

    def figures(self, done: int, total: int | None) -> dict[str, Any]:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = done / elapsed
        out: dict[str, Any] = {"done": done, "total": total, "rate": rate,
                               "fraction": None, "eta": None}
        if total:
            total = max(total, done)  # a total is a hint (blank lines): never below done
            out["total"] = total
            out["fraction"] = done / total
            out["eta"] = (total - done) / rate if rate > 0 else None
        return out

    def text(self, done: int, total: int | None, extra: str = "", *, bar: bool) -> str:
        f = self.figures(done, total)
        parts = []
        if f["fraction"] is not None:
            if bar:
                filled = int(f["fraction"] * BAR_WIDTH)
                parts.append("[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]")
            parts.append(f"{f['fraction'] * 100:.1f}%")
            parts.append(f"{done:,}/{f['total']:,}")
        else:
            parts.append(f"{done:,}")
        parts.append(f"{f['rate']:,.0f} 条/秒 rows/s")
        if f["eta"] is not None:
            parts.append(f"剩余 ETA {_duration(f['eta'])}")
        line = "  ".join(parts)
        return f"{line}  {extra}" if extra else line

    def update(self, done: int, total: int | None, state: Any = None,
               *, final: bool = False) -> None:
        extra = self.detail(state) if self.detail and state is not None else ""
        now = self.clock()
        if self.tty:
            line = self.text(done, total, extra, bar=True)
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + line[:max(width - 1, 20)].ljust(max(width - 1, 20)))
            self._drawn = True
            if final:
                self.stream.write("\n")
        elif final or self._last_line is None or now - self._last_line >= self.interval:
            self._last_line = now
            self.stream.write(("完成 done: " if final else "进度 progress: ")
                              + self.text(done, total, extra, bar=False) + "\n")
        self.stream.flush()
