"""Tests for idp.identity.credit_code (GB 32100-2015 and GB 11714).

Both check characters are recomputed here with independent reference
implementations written from the standards' formulas.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.cn import uscc

from idp.identity import (
    AUTHORITIES,
    CreditCode,
    InvalidCreditCode,
    InvalidOrgCode,
    compute_credit_check_char,
    compute_org_check_char,
    credit_code_embeds,
    is_valid_credit_code,
    org_code_of,
    parse_credit_code,
    parse_org_code,
)

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def reference_credit_check(first17: str) -> str:
    # GB 32100: C18 = 31 - MOD(sum(Ci * Wi), 31), where 31 is written as 0.
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def reference_org_check(body8: str) -> str:
    # GB 11714: C9 = 11 - MOD(sum(Ci * Wi), 11); 10 -> X, 11 -> 0.
    total = sum(int(c, 36) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def build(head8: str, org_body8: str) -> str:
    first17 = head8 + org_body8 + reference_org_check(org_body8)
    return first17 + reference_credit_check(first17)


def error_of(text: str) -> InvalidCreditCode:
    with pytest.raises(InvalidCreditCode) as info:
        parse_credit_code(text)
    return info.value


# --------------------------------------------------------------------------
# Worked examples


def test_worked_example_check_chars_by_computation() -> None:
    # 91350100M000100Y43: verify both check characters from first principles
    # rather than trusting the example.
    assert reference_org_check("M000100Y") == "4"
    assert reference_credit_check("91350100M000100Y4") == "3"
    assert compute_org_check_char("M000100Y") == "4"
    assert compute_credit_check_char("91350100M000100Y4") == "3"


def test_parse_worked_example() -> None:
    assert parse_credit_code("91350100M000100Y43") == CreditCode(
        code="91350100M000100Y43",
        authority_code="9",
        authority_name="工商",
        org_type_code="1",
        org_type_name="企业",
        region_code="350100",
        province="福建省",
        organisation_code="M000100Y-4",
    )


def test_python_stdnum_doc_example() -> None:
    code = parse_credit_code("91110000600037341L")
    assert reference_credit_check("91110000600037341") == "L"
    assert code.province == "北京市"
    assert code.organisation_code == "60003734-1"


@pytest.mark.parametrize(
    "typed",
    [
        "91350100m000100y43",
        " 9135 0100 M000 100Y 43 ",
        "91350100-M000100Y4-3",
        "９１３５０１００Ｍ０００１００Ｙ４３",
    ],
)
def test_normalises_user_typing(typed: str) -> None:
    assert parse_credit_code(typed).code == "91350100M000100Y43"


# --------------------------------------------------------------------------
# GB 32100 Table 1


def test_authority_table_is_complete() -> None:
    assert set(AUTHORITIES) == set("123456789ANY")
    assert {k: set(a.org_types) for k, a in AUTHORITIES.items()} == {
        "1": {"1", "2", "3", "9"},
        "2": {"1", "9"},
        "3": {"1", "2", "3", "4", "5", "9"},
        "4": {"1", "9"},
        "5": {"1", "2", "3", "9"},
        "6": {"1", "2", "9"},
        "7": {"1", "2", "9"},
        "8": {"1", "9"},
        "9": {"1", "2", "3"},
        "A": {"1", "9"},
        "N": {"1", "2", "3", "9"},
        "Y": {"1"},
    }
    assert AUTHORITIES["1"].name == "机构编制"
    assert AUTHORITIES["5"].name == "民政"
    assert AUTHORITIES["9"].org_types["2"] == "个体工商户"
    assert AUTHORITIES["Y"].name == "其他"


@pytest.mark.parametrize(
    ("head", "authority", "org_type"),
    [
        ("A1110000", "中央军委改革和编制办公室", "军队事业单位"),
        ("N2330100", "农业", "村级集体经济组织"),
        ("Y1440300", "其他", "其他"),
        ("12100000", "机构编制", "事业单位"),  # national level region 100000
        ("53350100", "民政", "基金会"),
    ],
)
def test_all_kinds_of_authority_parse(head: str, authority: str, org_type: str) -> None:
    code = build(head, "MA2B3C4D")
    parsed = parse_credit_code(code)
    assert (parsed.authority_name, parsed.org_type_name) == (authority, org_type)
    assert parsed.region_code == head[2:]


def test_letter_authorities_are_why_we_do_not_use_stdnum_validate() -> None:
    code = build("Y1440300", "MA2B3C4D")
    assert is_valid_credit_code(code)
    assert not uscc.is_valid(code)  # the limitation the module works around
    assert parse_credit_code(code).province == "广东省"
    assert parse_credit_code(build("12100000", "00001234")).province == "中央（国家级）"


# --------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        (" - ", "empty"),
        ("91350100M000100Y4", "length"),
        ("91350100M000100Y433", "length"),
        ("91350100M000I00Y43", "charset"),
        ("91350100M000O00Y43", "charset"),
        ("91350100S000100Y43", "charset"),
        ("91350100V000100Y43", "charset"),
        ("91350100Z000100Y43", "charset"),
        ("91350100M000100Y4?", "charset"),
        (build("B1350100", "M000100Y"), "authority"),
        (build("01350100", "M000100Y"), "authority"),
        (build("94350100", "M000100Y"), "org_type"),
        (build("99350100", "M000100Y"), "org_type"),
        (build("Y2350100", "M000100Y"), "org_type"),
        (build("9100A100", "M000100Y"), "region"),
        (build("91000000", "M000100Y"), "region"),
        (build("91710000", "M000100Y"), "region"),
        (build("91990000", "M000100Y"), "region"),
        ("91350100M000100Y53", "org_code_check"),
        ("91350100M000100Y44", "check_digit"),
    ],
)
def test_error_codes(text: str, code: str) -> None:
    error = error_of(text)
    assert error.code == code
    assert error.message and error.message_en


def test_check_digit_error_reports_expected_char() -> None:
    error = error_of("91350100M000100Y44")
    assert error.expected == "3"
    assert error.message == "校验码错误：最后一位应为 3"
    assert error.message_en == "check character should be '3'"


def test_org_code_check_error_reports_expected_char_and_comes_first() -> None:
    # Both check characters are wrong; the embedded one is reported because it
    # pin-points the typo better than "the last character".
    error = error_of("91350100M000100Y50")
    assert error.code == "org_code_check"
    assert error.expected == "4"
    assert error.position == 17
    assert "第 17 位应为 4" in error.message


def test_charset_error_mentions_excluded_letters() -> None:
    error = error_of("91350100M000I00Y43")
    assert error.position == 13
    assert "I、O、S、V、Z" in error.message


def test_org_type_error_lists_allowed_types() -> None:
    error = error_of(build("94350100", "M000100Y"))
    assert "1、2、3" in error.message


# --------------------------------------------------------------------------
# Legacy organisation codes


@pytest.mark.parametrize("typed", ["M000100Y-4", "M000100Y4", "m000100y-4", "Ｍ０００１００Ｙ－４"])
def test_parse_org_code(typed: str) -> None:
    org = parse_org_code(typed)
    assert org.code == "M000100Y4"
    assert org.formatted == "M000100Y-4" == str(org)


def _body_with_check(target: str) -> str:
    for n in range(1000):
        body = f"{n:08d}"
        if reference_org_check(body) == target:
            return body
    raise AssertionError(target)


def test_org_check_values_10_and_11() -> None:
    body_x = _body_with_check("X")
    body_0 = _body_with_check("0")
    assert compute_org_check_char(body_x) == "X"
    assert compute_org_check_char(body_0) == "0"
    assert parse_org_code(body_x + "X").code == body_x + "X"
    assert parse_org_code(body_x.lower() + "x").code == body_x + "X"
    assert parse_org_code(body_0 + "-0").code == body_0 + "0"


def test_org_code_may_use_letters_a_credit_code_may_not() -> None:
    body = "IOSVZ123"
    org = parse_org_code(body + reference_org_check(body))
    assert org.code.startswith("IOSVZ")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("M000100Y", "length"),
        ("M000100Y-45", "length"),
        ("M00010#Y-4", "charset"),
        ("M000100Y-A", "charset"),
        ("M000100Y-5", "org_code_check"),
    ],
)
def test_org_code_errors(text: str, code: str) -> None:
    with pytest.raises(InvalidOrgCode) as info:
        parse_org_code(text)
    assert info.value.code == code
    assert isinstance(info.value, InvalidCreditCode)  # one except clause catches both


def test_org_code_check_error_expected() -> None:
    with pytest.raises(InvalidOrgCode) as info:
        parse_org_code("M000100Y-5")
    assert info.value.expected == "4"
    assert "最后一位应为 4" in info.value.message


def test_linking_legacy_org_codes() -> None:
    assert org_code_of("91350100M000100Y43") == "M000100Y-4"
    assert credit_code_embeds("91350100M000100Y43", "M000100Y-4")
    assert credit_code_embeds("9135 0100 M000 100Y 43", "m000100y4")
    other = _body_with_check("7")
    assert not credit_code_embeds("91350100M000100Y43", other + "7")
    with pytest.raises(InvalidOrgCode):
        credit_code_embeds("91350100M000100Y43", "M000100Y-5")
    with pytest.raises(InvalidCreditCode):
        credit_code_embeds("91350100M000100Y44", "M000100Y-4")


def test_compute_functions_validate_input() -> None:
    with pytest.raises(InvalidCreditCode) as info:
        compute_credit_check_char("91350100M000100Y")
    assert info.value.code == "length"
    with pytest.raises(InvalidCreditCode) as info:
        compute_credit_check_char("91350100M000I00Y4")
    assert info.value.code == "charset"
    with pytest.raises(InvalidOrgCode):
        compute_org_check_char("M000100")
    with pytest.raises(InvalidOrgCode):
        compute_org_check_char("m000100y")


# --------------------------------------------------------------------------
# Property-based tests

# Mainland province-level codes plus 10 (national level).
PROVINCES = (
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 10"
)

authority_and_type = st.sampled_from(
    [a + t for a, authority in AUTHORITIES.items() for t in authority.org_types]
)
regions = st.tuples(st.sampled_from(PROVINCES.split()), st.integers(0, 9999)).map(
    lambda t: f"{t[0]}{t[1]:04d}"
)
org_bodies = st.text(alphabet=ALPHABET, min_size=8, max_size=8)


@st.composite
def valid_credit_codes(draw: st.DrawFn) -> str:
    return build(draw(authority_and_type) + draw(regions), draw(org_bodies))


@settings(max_examples=300, deadline=None)
@given(valid_credit_codes())
def test_generated_codes_validate(code: str) -> None:
    parsed = parse_credit_code(code)
    assert parsed.code == code
    assert parsed.region_code == code[2:8]
    assert parsed.organisation_code == code[8:16] + "-" + code[16]
    assert credit_code_embeds(code, parsed.organisation_code)
    assert compute_credit_check_char(code[:17]) == code[17]


@settings(max_examples=400, deadline=None)
@given(valid_credit_codes(), st.data())
def test_every_single_substitution_is_caught(code: str, data: st.DataObject) -> None:
    # MOD 31 over a 31-character alphabet with weights coprime to 31 detects
    # every single substitution within the alphabet.
    position = data.draw(st.integers(0, 17), label="position")
    replacement = data.draw(
        st.sampled_from([c for c in ALPHABET if c != code[position]]), label="replacement"
    )
    mutated = code[:position] + replacement + code[position + 1 :]
    assert not is_valid_credit_code(mutated)


def test_every_single_substitution_of_the_example_is_caught() -> None:
    code = "91350100M000100Y43"
    for position in range(18):
        for replacement in ALPHABET:
            if replacement != code[position]:
                mutated = code[:position] + replacement + code[position + 1 :]
                assert not is_valid_credit_code(mutated), mutated


def _assert_only_invalid_credit_code(text: str) -> None:
    for parse in (parse_credit_code, parse_org_code):
        try:
            parse(text)
        except InvalidCreditCode as error:
            assert error.one_line().isprintable()
            assert error.expected is None or error.code in {"check_digit", "org_code_check"}


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_fuzz_arbitrary_unicode(text: str) -> None:
    _assert_only_invalid_credit_code(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=ALPHABET + "IOSVZabx -１Ｍ", min_size=7, max_size=20))
def test_fuzz_code_like_text(text: str) -> None:
    _assert_only_invalid_credit_code(text)
