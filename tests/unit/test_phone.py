"""Tests for idp.identity.phone.normalize_phone."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.identity import InvalidPhone, is_valid_phone, normalize_phone


@pytest.mark.parametrize(
    "typed",
    [
        "13800000000",
        "138 0000 0000",
        "138-0000-0000",
        "+8613800000000",
        "+86 138 0000 0000",
        "+86-138-0000-0000",
        "008613800000000",
        "0086 138 0000 0000",
        "8613800000000",
        "１３８００００００００",
        "＋８６　１３８－００００－００００",
        "\u200b13800000000\n",
    ],
)
def test_normalises_user_typing(typed: str) -> None:
    assert normalize_phone(typed) == "13800000000"


@pytest.mark.parametrize("second", "3456789")
def test_all_mobile_prefixes(second: str) -> None:
    assert normalize_phone(f"1{second}912345678") == f"1{second}912345678"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        (" \u3000-", "empty"),
        ("1380000000", "length"),
        ("138000000001", "length"),
        ("+86138000", "length"),  # explicit +86: the rest is judged as national
        ("861380000000", "length"),  # bare 86 only recognised with 11 digits after it
        ("1380000000a", "charset"),
        ("(138)00000000", "charset"),
        ("12800000000", "prefix"),
        ("10800000000", "prefix"),
        ("23800000000", "prefix"),
        ("+1 202 555 0100", "prefix"),
        ("+44 7700 900000", "prefix"),
    ],
)
def test_errors(text: str, code: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(text)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)
    assert info.value.message and info.value.message_en


def test_error_messages() -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone("1380000000")
    assert "11" in info.value.message and "got 10" in info.value.message_en


def test_is_valid_phone() -> None:
    assert is_valid_phone("+86 138 0000 0000")
    assert not is_valid_phone("12800000000")


mobile_numbers = st.tuples(st.sampled_from("3456789"), st.integers(0, 999_999_999)).map(
    lambda t: f"1{t[0]}{t[1]:09d}"
)


@settings(max_examples=300, deadline=None)
@given(
    mobile_numbers,
    st.sampled_from(["", "+86", "0086", "86", "+86 ", "+86-"]),
    st.lists(st.sampled_from(["", " ", "-", "\u3000"]), min_size=11, max_size=11),
    st.booleans(),
)
def test_formatted_numbers_normalise(
    number: str, prefix: str, separators: list[str], fullwidth: bool
) -> None:
    typed = prefix + "".join(d + s for d, s in zip(number, separators, strict=True))
    if fullwidth:
        typed = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in typed)
    assert normalize_phone(typed) == number


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_fuzz_arbitrary_unicode(text: str) -> None:
    try:
        result = normalize_phone(text)
    except InvalidPhone as error:
        assert error.code in {"empty", "length", "charset", "prefix"}
        assert error.one_line().isprintable()
    else:
        assert len(result) == 11 and result.isascii() and result.isdigit()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789+86 -１", min_size=8, max_size=17))
def test_fuzz_number_like_text(text: str) -> None:
    try:
        result = normalize_phone(text)
    except InvalidPhone:
        return
    assert result[0] == "1" and result[1] in "3456789" and len(result) == 11
