"""``idp merge …`` with an id no row can have (beyond the database's integer) answers
like any unknown id: one readable line and exit 1, not an overflow traceback."""

from __future__ import annotations

import contextlib

import pytest
from click.testing import CliRunner

HUGE = "99999999999999999999999"


@pytest.fixture
def run(ctx, monkeypatch):
    from idp.cli import merge as merge_cli

    monkeypatch.setattr(merge_cli, "app_context", lambda: contextlib.nullcontext())
    from idp.cli import main

    def invoke(*args: str):
        return CliRunner().invoke(main, ["merge", *args], catch_exceptions=False)

    return invoke


@pytest.mark.parametrize("args, says", [
    (["approve", HUGE], f"no review item {HUGE}"),
    (["reject", HUGE], f"no review item {HUGE}"),
    (["undo", HUGE], f"no review item {HUGE}"),
    (["into", HUGE, "some-person"], f"no review item {HUGE}"),
    (["into", HUGE, "91350100M000100Y43"], f"no review item {HUGE}"),
    (["undo-persons", HUGE], f"no merge record {HUGE}"),
    (["approve", "2147483648"], "no review item 2147483648"),
    (["undo-persons", "0"], "no merge record 0"),
])
def test_merge_commands_refuse_ids_beyond_any_row(run, args, says):
    for extra in ([], ["--json"]):
        result = run(*args, *extra)
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], result.stderr


def test_review_and_merge_services_answer_not_found_for_huge_ids(ctx):
    from connectors import merge, review
    from connectors.review_listing import detail

    huge = int(HUGE)
    assert review.kind(huge) is None and detail(huge) is None
    with pytest.raises(review.ReviewError, match="no review item"):
        review.approve(huge, by="test")
    with pytest.raises(merge.MergeError, match="no merge record"):
        merge.undo_merge(huge, actor="test")
