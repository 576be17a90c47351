"""``idp legacy import`` as an operator runs it in a terminal (issue 12): stderr is a
pseudo-terminal, so progress is one bar redrawn in place, with the percentage, the
count of the total, the rate and the time left; stdout stays the summary alone."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import sys


def _read_all(fd: int) -> str:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the writing end is closed
            break
        if not chunk:
            break
        out += chunk
    return out.decode("utf-8", "replace")


def test_a_terminal_gets_a_progress_bar(ctx, tmp_path, monkeypatch, capsys):
    from idp.cli import legacy, main
    from idp.extensions import db

    rows = "".join(f"u{n},某人{n},\n" for n in range(40))
    (tmp_path / "old.csv").write_text("编号,姓名,身份证号\n" + rows, encoding="utf-8")
    (tmp_path / "old.toml").write_text(
        '[source]\nname = "old"\nkind = "csv"\n\n[fields]\nlegacy_id = "编号"\nname = "姓名"\n'
        'id_number = "身份证号"\n\n[csv]\npath = "old.csv"\n', encoding="utf-8")
    monkeypatch.setattr(legacy, "app_context", contextlib.nullcontext)
    monkeypatch.setenv("COLUMNS", "200")
    db.session.commit()
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w", encoding="utf-8")
    assert terminal.isatty()
    monkeypatch.setattr(sys, "stderr", terminal)
    try:
        main.main(["legacy", "import", "--config", str(tmp_path / "old.toml"),
                   "--batch-size", "10", "--json"], standalone_mode=False)
    finally:
        terminal.close()
    err = _read_all(master)
    os.close(master)
    bars = [part for part in err.split("\r") if part.startswith("[")]
    assert len(bars) == 5, err  # redrawn after each of the 4 batches, and at the end
    assert bars[0].startswith("[######------------------]  25.0%  10/40  ")
    assert bars[-1].startswith("[" + "#" * 24 + "]  100.0%  40/40  ")
    assert "条/秒 rows/s" in bars[-1] and "剩余 ETA" in bars[-1] and "待审核 queued 40" in bars[-1]
    assert err.endswith("\n") and err.count("\n") == 1  # one line, ended when done
    assert json.loads(capsys.readouterr().out)["queued"] == 40
