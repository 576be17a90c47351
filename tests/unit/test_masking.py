"""Tests for idp.identity.masking."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idp.identity import (
    mask_credit_code,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_record,
    mask_text,
    masking,
)


def test_mask_id_number() -> None:
    assert mask_id_number("110105194912310021") == "110105********0021"
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_id_number("110105491231002") == "110105*****1002"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("12345678", "12****78"),
        ("M000100Y4", "M0*****Y4"),
        ("1234567890123", "123*******123"),
        ("1234567", "*******"),
        ("", ""),
    ],
)
def test_mask_id_number_generic_lengths(value: str, masked: str) -> None:
    assert mask_id_number(value) == masked
    assert len(mask_id_number(value)) == len(value)


@pytest.mark.parametrize("length", range(8, 40))
def test_mask_id_number_bounds_what_is_shown(length: int) -> None:
    masked = mask_id_number("7" * length)
    shown = length - masked.count("*")
    assert masked.count("*") >= 4
    assert shown <= 10  # never more than first 6 + last 4
    if length < 14:
        assert shown * 2 <= length  # short values: at most half
    assert masked[0] == "7" and masked[-1] == "7"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13800000000", "138****0000"),
        ("+86 138-0000-0000", "+86 138-****-0000"),
        ("8613912345678", "86139****5678"),
        ("1234567", "*******"),
    ],
)
def test_mask_phone(value: str, masked: str) -> None:
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三丰", "张**"),
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("阿卜杜拉·艾买提", "阿***·***"),
        ("张", "*"),
        ("", ""),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_mask_credit_code() -> None:
    assert mask_credit_code("91350100M000100Y43") == "91************0Y43"
    assert mask_credit_code("M000100Y4") == "*********"


def test_mask_text_examples() -> None:
    line = "login sub=11010519491231002X phone=13800000000 ok"
    assert mask_text(line) == "login sub=110105********002X phone=138****0000 ok"
    assert mask_text("id 11010519491231002x.") == "id 110105********002x."
    assert mask_text("old id 110105491231002;") == "old id 110105*****1002;"
    assert mask_text("tel +86 138-0000-0000") == "tel +86 138-****-0000"
    assert mask_text("tel 0086 13800000000") == "tel 0086 138****0000"
    assert mask_text("tel 139 1234 5678 end") == "tel 139 **** 5678 end"
    assert mask_text("用户11010519491231002X登录") == "用户110105********002X登录"
    assert mask_text("a 13800000000 b 11010519491231002X") == ("a 138****0000 b 110105********002X")


@pytest.mark.parametrize(
    "line",
    [
        "nothing to see here",
        "",
        "order 1234567890123456789 done",  # 19 digits: not an ID
        "order 1234567890123456 done",  # 16 digits
        "ts 12800000000",  # 12x is no mobile prefix
        "n 213800000000",  # 12 digits
        "2024-01-01 12:00:00,123 took 1500 ms",
        "uuid 5f2b0c9e-1a2b-4c3d-8e9f-0123456789ab",
        "mixed 138-0000 0000",  # inconsistent separators
    ],
)
def test_mask_text_leaves_other_numbers_alone(line: str) -> None:
    assert mask_text(line) == line


def test_mask_text_is_the_same_object_when_nothing_to_mask() -> None:
    line = "x" * 1000
    assert mask_text(line) is line


# The two-stage implementation must agree with the straightforward one-pass
# substitution it optimises.
def _reference_mask_text(text: str) -> str:
    return masking._PII_PATTERN.sub(masking._mask_match, text)


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet="0123456789Xx+ -a\u3000", max_size=60))
def test_mask_text_agrees_with_one_pass_reference(text: str) -> None:
    assert mask_text(text) == _reference_mask_text(text)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="abc ,=:中文", max_size=10),
    st.integers(10**16, 10**17 - 1).map(str),
    st.sampled_from("0123456789X"),
    st.text(alphabet="abc ,=:中文", max_size=10),
)
def test_mask_text_never_lets_an_id_through(prefix: str, body: str, last: str, suffix: str) -> None:
    number = body + last
    masked = mask_text(prefix + number + suffix)
    assert number not in masked
    assert body[6:14] not in masked  # the birth date part is hidden
    assert masked == prefix + mask_id_number(number) + suffix


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("idp", logging.INFO, __file__, 1, msg, args, None)


def test_record_masking_masks_formatted_message() -> None:
    record = _record("user %s from %s", "11010519491231002X", "13800000000")
    mask_record(record)
    assert record.getMessage() == "user 110105********002X from 138****0000"
    assert record.args is None


def test_record_masking_leaves_clean_records_untouched() -> None:
    record = _record("took %d ms", 12)
    mask_record(record)
    assert record.msg == "took %d ms" and record.args == (12,)


def test_record_masking_tolerates_broken_format_args() -> None:
    record = _record("needs two %s %s for 11010519491231002X", "only one")
    mask_record(record)
    assert record.args is None and "11010519491231002X" not in record.msg


def test_record_masking_covers_the_traceback() -> None:
    try:
        raise ValueError("no person 11010519491231002X")
    except ValueError:
        import sys

        record = logging.LogRecord("idp", logging.ERROR, __file__, 1, "boom", None,
                                   sys.exc_info())
    mask_record(record)
    assert "11010519491231002X" not in record.exc_text
    assert "110105********002X" in record.exc_text
