"""Tests for ``idp id check`` (idp.identity.cli) and idp.identity.describe."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.identity import (
    InvalidCreditCode,
    InvalidIdentifier,
    InvalidIdNumber,
    InvalidOrgCode,
    compute_check_char,
    describe,
)
from idp.identity.cli import id_group


def run(*args: str) -> Result:
    return CliRunner().invoke(id_group, list(args))


# --------------------------------------------------------------------------
# describe()


def test_describe_resident() -> None:
    assert describe("11010519491231002x") == {
        "kind": "resident",
        "kind_label": "居民身份证",
        "normalised": "11010519491231002X",
        "region": "110105",
        "province": "北京市",
        "birth_date": "1949-12-31",
        "sex": "F",
        "converted_from_15": False,
        "valid": True,
    }


def test_describe_legacy_15_digit() -> None:
    info = describe("110105491231002")
    assert info["normalised"] == "11010519491231002X"
    assert info["converted_from_15"] is True


def _foreigner() -> str:
    first17 = "9" + "11" + "840" + "19900101" + "002"
    return first17 + compute_check_char(first17)


def test_describe_foreigner() -> None:
    info = describe(_foreigner())
    assert info["kind"] == "foreigner_permanent"
    assert info["nationality_code"] == "840"
    assert info["region"] == "110000"


def test_describe_credit_code() -> None:
    assert describe("91350100M000100Y43") == {
        "kind": "credit_code",
        "kind_label": "统一社会信用代码",
        "normalised": "91350100M000100Y43",
        "authority_code": "9",
        "authority": "工商",
        "org_type_code": "1",
        "org_type": "企业",
        "region": "350100",
        "province": "福建省",
        "organisation_code": "M000100Y-4",
        "valid": True,
    }


def test_describe_org_code() -> None:
    info = describe("M000100Y-4")
    assert info["kind"] == "org_code"
    assert info["organisation_code"] == "M000100Y-4"


def test_describe_result_is_json_ready() -> None:
    for text in ("11010519491231002X", "91350100M000100Y43", "M000100Y4", _foreigner()):
        info = describe(text)
        assert json.loads(json.dumps(info)) == info
        assert info["valid"] is True


@pytest.mark.parametrize(
    ("text", "error_type", "code"),
    [
        ("", InvalidIdentifier, "empty"),
        ("hello", InvalidIdentifier, "length"),
        ("1101051949123100", InvalidIdentifier, "length"),
        # 18 characters: the more plausible reading's error is reported.
        ("110105194912310021", InvalidIdNumber, "check_digit"),
        ("11010519491231002Y", InvalidIdNumber, "charset"),
        ("91350100M000100Y44", InvalidCreditCode, "check_digit"),
        ("91350100M000100Y53", InvalidCreditCode, "org_code_check"),
        ("B1350100M000100Y43", InvalidCreditCode, "authority"),
        ("11010519491331002X", InvalidIdNumber, "birth_date"),
        ("110105491331002", InvalidIdNumber, "birth_date"),
        ("M000100Y-5", InvalidOrgCode, "org_code_check"),
    ],
)
def test_describe_errors(text: str, error_type: type[InvalidIdentifier], code: str) -> None:
    with pytest.raises(error_type) as info:
        describe(text)
    assert info.value.code == code


def test_describe_foreigner_typo_is_reported_as_id_number() -> None:
    number = _foreigner()
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    with pytest.raises(InvalidIdNumber) as info:
        describe(wrong)
    assert info.value.code == "check_digit"
    assert info.value.expected == number[17]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_fuzz_describe(text: str) -> None:
    try:
        info = describe(text)
    except InvalidIdentifier as error:
        assert error.one_line().isprintable()
    else:
        assert info["valid"] is True


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789XMY19 -", min_size=8, max_size=19))
def test_fuzz_describe_number_like(text: str) -> None:
    try:
        describe(text)
    except InvalidIdentifier:
        pass


# --------------------------------------------------------------------------
# The CLI


def test_check_resident_summary() -> None:
    result = run("check", "11010519491231002X")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "类型/kind: 居民身份证 resident"
    assert "号码/number: 11010519491231002X" in lines
    assert "地区/region: 110105 北京市" in lines
    assert "出生日期/birth date: 1949-12-31" in lines
    assert "性别/sex: 女 F" in lines
    assert result.stderr == ""


def test_check_legacy_number_mentions_conversion() -> None:
    result = run("check", "110105 491231 002")
    assert result.exit_code == 0
    assert "11010519491231002X" in result.stdout
    assert "15" in result.stdout


def test_check_credit_code_summary() -> None:
    result = run("check", "91350100M000100Y43")
    assert result.exit_code == 0
    assert "类型/kind: 统一社会信用代码 credit_code" in result.stdout
    assert "登记管理部门/registration authority: 9 工商" in result.stdout
    assert "机构类别/organisation type: 1 企业" in result.stdout
    assert "组织机构代码/organisation code: M000100Y-4" in result.stdout


def test_check_json() -> None:
    result = run("check", "11010519491231002X", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == describe("11010519491231002X")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["check", "110105194912310021"],
            ["校验码错误：最后一位应为 X", "check character should be 'X'"],
        ),
        (["check", "110105194912310021", "--json"],
         ['"expected": "X"', '"code": "check_digit"', "应为 X"]),
        (["check", "91350100M000100Y44"], ["应为 3", "credit code"]),
        (["check", "M000100Y-5"], ["应为 4", "organisation code"]),
        (["check", "hello"], ["5 位"]),
        (["check", "1101051949\x07231002X"], ["U+0007", "ID number"]),
    ],
)
def test_check_invalid_prints_one_line_to_stderr(args: list[str], fragments: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")
    for fragment in fragments:
        assert fragment in result.stderr


def test_group_help_lists_check() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "check" in result.stdout
