"""A CSV export's malformed rows are rejected and reported, never read silently wrong
(issue 12, import honesty): an unterminated quote, short and extra-column rows."""

from __future__ import annotations

import pytest

from connectors.base import ConnectorError
from connectors.csv_source import CsvSource

FIELDS = {"legacy_id": "id", "name": "name", "phone": "phone"}


def _source(tmp_path, text: str) -> CsvSource:
    path = tmp_path / "u.csv"
    path.write_text(text, encoding="utf-8")
    return CsvSource("s", FIELDS, path=path)


def test_an_unterminated_quote_costs_its_own_line_not_the_rest_of_the_file(tmp_path):
    # Four data lines; before the fix csv read two records and said nothing.
    source = _source(tmp_path, 'id,name,phone\nu1,李四,\nu2,"张三,\nu3,王五,\nu4,赵六,\n')
    rows = list(source.rows())
    assert [(r.legacy_id, r.name, r.where) for r in rows] == [
        ("u1", "李四", "line 2"), ("u3", "王五", "line 4"), ("u4", "赵六", "line 5")]
    assert source.error_counts == {"unterminated quote": 1}
    (error,) = source.errors
    assert error.where == "line 3" and error.legacy_id == "u2"
    assert "lines 3-5" in error.reason and "张三" not in error.reason


def test_a_quoted_line_break_with_the_right_fields_is_one_record(tmp_path):
    source = _source(tmp_path, 'id,name,phone\nu1,"李\n四",139\nu2,b,\n')
    assert [(r.legacy_id, r.name, r.where) for r in source.rows()] == [
        ("u1", "李\n四", "line 2"), ("u2", "b", "line 4")]
    assert source.error_count == 0


def test_short_and_extra_column_rows_are_rejected_with_the_counts(tmp_path):
    # An unquoted comma in a name shifts every later value one column right.
    source = _source(tmp_path, "id,name,phone\nu1,张,三,13912345678\nu2,李四\nu3,王五,\n")
    assert [r.legacy_id for r in source.rows()] == ["u3"]
    assert source.error_counts == {"wrong number of fields": 2}
    assert [(e.where, e.legacy_id, e.reason) for e in source.errors] == [
        ("line 2", "u1", "wrong number of fields (4; the header has 3)"),
        ("line 3", "u2", "wrong number of fields (2; the header has 3)")]


def test_each_reject_reaches_the_sink_beyond_the_kept_list(tmp_path, monkeypatch):
    import connectors.base

    monkeypatch.setattr(connectors.base, "MAX_KEPT_ERRORS", 2)
    source = _source(tmp_path, "id,name,phone\n" + "x,y\n" * 5)
    seen = []
    source.reject_sink = seen.append
    assert list(source.rows()) == []
    assert len(source.errors) == 2 and source.error_count == 5
    assert [e.where for e in seen] == [f"line {n}" for n in range(2, 7)]


def test_total_hint_counts_the_lines_after_the_header(tmp_path):
    assert _source(tmp_path, "id,name,phone\nu1,a,\nu2,b,\n").total_hint() == 2
    assert _source(tmp_path, "").total_hint() == 0


@pytest.mark.parametrize("fmt", ["md6", "MD5 ", "bcrypt2"])
def test_an_unknown_password_format_is_refused_when_the_source_is_made(tmp_path, fmt):
    with pytest.raises(ConnectorError, match=r"unknown password format .*known formats"):
        CsvSource("s", FIELDS, path=tmp_path / "u.csv", password_format=fmt)


def test_the_reject_report_masks_where_a_row_was_too():
    from connectors.rejects import mask_where

    assert mask_where("cn=张三丰,ou=people,dc=gov,dc=cn") == "cn=张**,ou=people,dc=gov,dc=cn"
    assert mask_where("uid=13912345678,ou=people") == "uid=139****5678,ou=people"
    assert "110105194912310021" not in mask_where("row 2 (yhid='110105194912310021')")
    assert mask_where("line 3") == "line 3"
