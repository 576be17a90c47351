"""``idp legacy import``'s progress: a bar with percentage, count, rate and ETA on a
terminal; plain periodic lines otherwise. A fake clock drives it: no sleeping."""

from __future__ import annotations

import io

from idp.cli.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_one_redrawn_bar_with_rate_and_eta(monkeypatch):
    # The bar is cut to the terminal's width; this one is wide (COLUMNS is what
    # shutil.get_terminal_size reads first, and a test runner may set it to 80).
    monkeypatch.setenv("COLUMNS", "120")
    clock, out = Clock(), Tty()
    bar = Progress(out, clock=clock, detail=lambda s: f"queued {s}")
    clock.now += 10
    bar.update(2_000, 20_000, 7)
    text = out.getvalue()
    assert text.startswith("\r[##----------------------]  10.0%  2,000/20,000  200 条/秒 rows/s")
    assert "剩余 ETA 1:30" in text and text.rstrip().endswith("queued 7")
    assert "\n" not in text
    clock.now += 90
    bar.update(20_000, 20_000, 9, final=True)
    last = out.getvalue().rsplit("\r", 1)[1]
    assert last.startswith("[" + "#" * 24 + "]  100.0%  20,000/20,000") and last.endswith("\n")


def test_piped_output_is_a_line_per_interval_and_one_at_the_end():
    clock, out = Clock(), io.StringIO()
    bar = Progress(out, interval=10, clock=clock)
    for step in range(1, 6):  # every 4 seconds
        clock.now += 4
        bar.update(step * 100, 1000)
    bar.update(1000, 1000, final=True)
    lines = out.getvalue().splitlines()
    # the first update, then 12 s later (8 s is too soon), then the end
    assert [line.split()[3] for line in lines] == ["100/1,000", "400/1,000", "1,000/1,000"]
    assert lines[0].startswith("进度 progress: 10.0%") and "剩余 ETA 0:36" in lines[0]
    assert lines[-1].startswith("完成 done: 100.0%") and "\r" not in out.getvalue()


def test_without_a_total_there_is_no_percentage_nor_eta():
    clock, out = Clock(), io.StringIO()
    bar = Progress(out, clock=clock, interval=0)
    clock.now += 2
    bar.update(500, None)
    assert out.getvalue() == "进度 progress: 500  250 条/秒 rows/s\n"


def test_a_total_below_the_count_is_raised_not_over_100_percent():
    clock, out = Clock(), io.StringIO()
    bar = Progress(out, clock=clock)
    clock.now += 1
    bar.update(12, 10)
    assert "100.0%  12/12" in out.getvalue()
