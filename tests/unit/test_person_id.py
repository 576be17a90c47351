"""Tests for idp.identity.person_id (GB 11643-1999 and related numbers).

The check character is recomputed here with an independent implementation of
ISO 7064 MOD 11-2 (explicit weight table) so the tests do not just trust
python-stdnum, which the module under test uses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.identity import (
    InvalidIdNumber,
    PersonId,
    compute_check_char,
    convert_15_to_18,
    is_valid,
    parse_person_id,
)

TODAY = dt.date(2025, 6, 1)

# GB 11643-1999, section 7: W_i = 2^(i-1) mod 11, i counted from the right
# with the check character at i = 1.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Province-level codes as listed in GB/T 2260 (kept literal here on purpose).
RESIDENT_PROVINCES = (
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71"
).split()
MAINLAND_PROVINCES = [p for p in RESIDENT_PROVINCES if p != "71"]


def reference_check(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def with_check(first17: str) -> str:
    return first17 + reference_check(first17)


def parse(text: str) -> PersonId:
    return parse_person_id(text, today=TODAY)


def error_of(text: str) -> InvalidIdNumber:
    with pytest.raises(InvalidIdNumber) as info:
        parse(text)
    return info.value


# --------------------------------------------------------------------------
# The standard's own worked examples


def test_gb11643_worked_example() -> None:
    person = parse("11010519491231002X")
    assert person == PersonId(
        kind="resident",
        number="11010519491231002X",
        region_code="110105",
        province="北京市",
        birth_date=dt.date(1949, 12, 31),
        sex="F",  # sequence code 002 is even
        converted_from_15=False,
        nationality_code=None,
    )
    assert person.kind_label == "居民身份证"


def test_gb11643_second_example_check_char_but_born_before_1900() -> None:
    # The standard's other example (广东省汕头市潮阳县, born 1880-01-01): its
    # check character is right, but we deliberately reject births before 1900.
    assert reference_check("44052418800101001") == "4"
    assert compute_check_char("44052418800101001") == "4"
    error = error_of("440524188001010014")
    assert error.code == "birth_date"
    assert "1900" in error.message and "1900" in error.message_en


def test_reference_check_agrees_with_known_examples() -> None:
    # Guards the independent implementation itself.
    assert reference_check("11010519491231002") == "X"
    assert reference_check("36042619910101007") == "1"  # python-stdnum's doc example


# --------------------------------------------------------------------------
# Normalisation of what users type


@pytest.mark.parametrize(
    "typed",
    [
        "11010519491231002x",
        " 11010519491231002X ",
        "110105 19491231 002X",
        "110105-19491231-002X",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５１９４９１２３１００２ｘ",
        "110105\u300019491231\u3000002X",
        "110105\u200b19491231002X\ufeff",
        "110105－19491231－002X",
        "\t11010519491231002X\n",
    ],
)
def test_normalises_user_typing(typed: str) -> None:
    assert parse(typed).number == "11010519491231002X"


def test_no_unicode_folding_beyond_fullwidth() -> None:
    # Arabic-Indic digits are digits to str.isdigit() and int(), not to us.
    error = error_of("١١٠١٠٥١٩٤٩١٢٣١٠٠٢X")
    assert error.code == "charset"
    assert error.position == 1


# --------------------------------------------------------------------------
# Error codes, in the documented order


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("   \u3000-", "empty"),
        ("1101051949123100", "length"),
        ("1101051949123100234", "length"),
        ("11010519491231002Y", "charset"),
        ("1101051949123100X2", "charset"),
        ("110105194912310X2", "charset"),  # X only allowed last, checked first
        (with_check("00010519491231002"), "region"),
        (with_check("99010519491231002"), "region"),  # 9 + unknown province
        (with_check("81010519491231002"), "region"),  # 81 only as 810000
        (with_check("72010519491231002"), "region"),
        (with_check("11010519491331002"), "birth_date"),
        (with_check("11010519490230002"), "birth_date"),
        (with_check("11010518991231002"), "birth_date"),
        (with_check("11010520250602002"), "birth_date"),  # after TODAY
        (with_check("11010500000101002"), "birth_date"),
        ("110105194912310021", "check_digit"),
    ],
)
def test_error_codes(text: str, code: str) -> None:
    error = error_of(text)
    assert error.code == code
    assert isinstance(error, ValueError)
    assert error.message and error.message_en
    assert error.expected is None or code == "check_digit"


def test_charset_error_names_position_and_character() -> None:
    error = error_of("1101051949A231002X")
    assert error.position == 11
    assert "第 11 位" in error.message and "“A”" in error.message
    assert "position 11" in error.message_en


def test_control_characters_are_escaped_in_messages() -> None:
    error = error_of("1101051949\x07231002X")
    assert "U+0007" in error.message and "U+0007" in error.message_en
    assert "\x07" not in error.one_line()


def test_check_digit_error_reports_expected_char() -> None:
    error = error_of("110105194912310021")
    assert error.code == "check_digit"
    assert error.expected == "X"
    assert error.message == "校验码错误：最后一位应为 X"
    assert error.message_en == "check character should be 'X'"
    assert error.position == 18


def test_messages_do_not_leak_the_number() -> None:
    for text in ("110105194912310021", with_check("11010519491331002")):
        error = error_of(text)
        assert text not in error.one_line()
        assert text[6:14] not in error.one_line()  # nor the birth date


def test_region_81_message_explains_permits() -> None:
    error = error_of(with_check("81010519491231002"))
    assert "810000" in error.message and "810000" in error.message_en


@pytest.mark.parametrize(
    ("birth", "ok"),
    [("20000229", True), ("19000229", False), ("19960229", True), ("19970229", False)],
)
def test_leap_days(birth: str, ok: bool) -> None:
    assert is_valid(with_check("110105" + birth + "001"), today=TODAY) is ok


def test_birth_date_today_is_allowed_and_tomorrow_is_not() -> None:
    number = with_check("110105" + TODAY.strftime("%Y%m%d") + "001")
    assert parse(number).birth_date == TODAY
    assert not is_valid(number, today=TODAY - dt.timedelta(days=1))


def test_default_today_is_the_real_date() -> None:
    assert parse_person_id("11010519491231002X").birth_date.year == 1949
    future = with_check("110105" + str(dt.date.today().year + 1) + "0101001")
    with pytest.raises(InvalidIdNumber) as info:
        parse_person_id(future)
    assert info.value.code == "birth_date"


# --------------------------------------------------------------------------
# Kinds


@pytest.mark.parametrize(
    ("prefix", "province"),
    [("810000", "香港特别行政区"), ("820000", "澳门特别行政区"), ("830000", "台湾地区")],
)
def test_hmt_residence_permits(prefix: str, province: str) -> None:
    person = parse(with_check(prefix + "19900101003"))
    assert person.kind == "hmt_permit"
    assert person.region_code == prefix
    assert person.province == province
    assert person.birth_date == dt.date(1990, 1, 1)
    assert person.sex == "M"


def test_foreigner_permanent_residence_2023() -> None:
    number = with_check("9" + "31" + "840" + "19800704" + "005")
    person = parse(number)
    assert person.kind == "foreigner_permanent"
    assert person.kind_label == "外国人永久居留身份证"
    assert person.region_code == "310000"
    assert person.province == "上海市"
    assert person.nationality_code == "840"
    assert person.birth_date == dt.date(1980, 7, 4)
    assert person.sex == "M"


@pytest.mark.parametrize("issuing", ["00", "71", "81", "99"])
def test_foreigner_issuing_place_must_be_mainland_province(issuing: str) -> None:
    assert error_of(with_check("9" + issuing + "840" + "19800704" + "005")).code == "region"


def test_foreigner_check_char_is_mod_11_2() -> None:
    first17 = "9" + "11" + "156" + "19900101" + "002"
    wrong = "0" if reference_check(first17) != "0" else "1"
    error = error_of(first17 + wrong)
    assert error.code == "check_digit"
    assert error.expected == reference_check(first17)


def test_taiwan_province_code_71_is_a_resident_prefix() -> None:
    assert parse(with_check("71000019700101001")).province == "台湾省"


def test_sex_from_sequence_parity() -> None:
    assert parse(with_check("11010519491231001")).sex == "M"
    assert parse(with_check("11010519491231002")).sex == "F"
    assert parse(with_check("11010519491231990")).sex == "F"


def test_person_id_is_frozen() -> None:
    person = parse("11010519491231002X")
    with pytest.raises(dataclasses.FrozenInstanceError):
        person.number = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------
# 15-digit legacy numbers


def test_15_digit_conversion() -> None:
    person = parse("110105491231002")
    assert person.number == "11010519491231002X"
    assert person.converted_from_15 is True
    assert person.birth_date == dt.date(1949, 12, 31)
    assert convert_15_to_18("110105 491231 002") == "11010519491231002X"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("11010549123100X", "charset"),
        ("810000491231002", "region"),  # no permits in the 15-digit era
        ("911101491231002", "region"),
        ("110105491331002", "birth_date"),
    ],
)
def test_15_digit_errors(text: str, code: str) -> None:
    assert error_of(text).code == code


def test_convert_15_to_18_rejects_other_lengths() -> None:
    with pytest.raises(InvalidIdNumber) as info:
        convert_15_to_18("11010519491231002X")
    assert info.value.code == "length"


# --------------------------------------------------------------------------
# compute_check_char / is_valid


def test_compute_check_char_validates_input() -> None:
    with pytest.raises(InvalidIdNumber) as info:
        compute_check_char("1101051949123100")
    assert info.value.code == "length"
    # int(x, 13), which python-stdnum uses, would accept all of these.
    for bad in ("1101051949123100A", "1101051949123_002", "1101051949123100٣", " 1101051949123100"):
        with pytest.raises(InvalidIdNumber) as info:
            compute_check_char(bad)
        assert info.value.code == "charset"


def test_is_valid() -> None:
    assert is_valid("11010519491231002X")
    assert not is_valid("110105194912310021")
    assert not is_valid("")


# --------------------------------------------------------------------------
# Property-based tests

provinces = st.sampled_from(RESIDENT_PROVINCES)
birth_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY)
sequences = st.integers(0, 999).map(lambda n: f"{n:03d}")
counties = st.integers(0, 9999).map(lambda n: f"{n:04d}")


@st.composite
def resident_first17(draw: st.DrawFn) -> str:
    birth = draw(birth_dates).strftime("%Y%m%d")
    return draw(provinces) + draw(counties) + birth + draw(sequences)


@st.composite
def any_valid_number(draw: st.DrawFn) -> str:
    birth = draw(birth_dates).strftime("%Y%m%d")
    seq = draw(sequences)
    head = draw(
        st.one_of(
            provinces.flatmap(lambda p: counties.map(lambda c: p + c)),
            st.sampled_from(["810000", "820000", "830000"]),
            st.tuples(st.sampled_from(MAINLAND_PROVINCES), st.integers(0, 999)).map(
                lambda t: f"9{t[0]}{t[1]:03d}"
            ),
        )
    )
    return with_check(head + birth + seq)


@settings(max_examples=300, deadline=None)
@given(resident_first17())
def test_generated_resident_numbers_validate(first17: str) -> None:
    number = with_check(first17)
    person = parse(number)
    assert person.number == number
    assert person.kind == "resident"
    assert person.region_code == first17[:6]
    assert person.birth_date.strftime("%Y%m%d") == first17[6:14]
    assert person.sex == ("M" if int(first17[16]) % 2 else "F")
    assert compute_check_char(first17) == number[17]


@settings(max_examples=300, deadline=None)
@given(any_valid_number(), st.data())
def test_every_single_substitution_is_caught(number: str, data: st.DataObject) -> None:
    # MOD 11-2 detects every single-character substitution: each weight is
    # non-zero mod 11 and two characters differ by at most 10 < 11.
    assert is_valid(number, today=TODAY)
    position = data.draw(st.integers(0, 17), label="position")
    replacement = data.draw(
        st.sampled_from([c for c in "0123456789X" if c != number[position]]), label="replacement"
    )
    mutated = number[:position] + replacement + number[position + 1 :]
    assert not is_valid(mutated, today=TODAY)


def test_every_single_substitution_of_the_standard_example_is_caught() -> None:
    number = "11010519491231002X"
    for position in range(18):
        for replacement in "0123456789X":
            if replacement != number[position]:
                mutated = number[:position] + replacement + number[position + 1 :]
                assert not is_valid(mutated, today=TODAY), mutated


@settings(max_examples=200, deadline=None)
@given(any_valid_number(), st.integers(0, 16))
def test_every_adjacent_transposition_is_caught(number: str, position: int) -> None:
    a, b = number[position], number[position + 1]
    if a == b:
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert not is_valid(swapped, today=TODAY)


@settings(max_examples=300, deadline=None)
@given(
    provinces,
    counties,
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31)),
    sequences,
)
def test_15_digit_round_trip(province: str, county: str, birth: dt.date, seq: str) -> None:
    number15 = province + county + birth.strftime("%y%m%d") + seq
    old = parse(number15)
    assert old.converted_from_15
    assert len(old.number) == 18
    assert old.number == with_check(number15[:6] + "19" + number15[6:])
    assert convert_15_to_18(number15, today=TODAY) == old.number
    new = parse(old.number)
    assert not new.converted_from_15
    assert (new.birth_date, new.region_code, new.sex) == (birth, number15[:6], old.sex)


_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789X"}


@settings(max_examples=120, deadline=None)
@given(any_valid_number(), st.data())
def test_formatting_noise_is_ignored(number: str, data: st.DataObject) -> None:
    noisy = []
    for char in number:
        if data.draw(st.booleans()):
            char = _FULLWIDTH[char]
        if char in "Xx" and data.draw(st.booleans()):
            char = char.lower()
        noisy.append(char)
        noisy.append(data.draw(st.sampled_from(["", "", " ", "\u3000", "-", "\uff0d", "\u200b"])))
    assert parse("".join(noisy)).number == number


# --------------------------------------------------------------------------
# Fuzzing: only InvalidIdNumber, never anything else


def _assert_only_invalid_id_number(text: str) -> None:
    try:
        person = parse(text)
    except InvalidIdNumber as error:
        assert error.code in {"empty", "length", "charset", "region", "birth_date", "check_digit"}
        line = error.one_line()
        assert line.isprintable(), line
    else:
        assert len(person.number) == 18


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_fuzz_arbitrary_unicode(text: str) -> None:
    _assert_only_invalid_id_number(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789Xx -\u3000１９ｘ\n", min_size=13, max_size=22))
def test_fuzz_number_like_text(text: str) -> None:
    # Random unicode almost never reaches the region/date/check stages; this does.
    _assert_only_invalid_id_number(text)
