"""``idp account close-due``: erases what is due, --json, one-line errors."""

from __future__ import annotations

import json

from tests.integration.test_cli import run  # noqa: F401 - the fixture


def test_close_due_lists_then_erases_nothing_when_none_is_due(run):  # noqa: F811
    res = run("account", "close-due", "--dry-run", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {"due": []}
    res = run("account", "close-due", "--json")
    assert json.loads(res.stdout) == {"erased": []}


def test_close_due_refuses_unknown_options_with_one_line(run):  # noqa: F811
    res = run("account", "close-due", "--soon")
    assert res.exit_code != 0 and len(res.stderr.strip().splitlines()) <= 3
