"""``idp id ...`` commands: check identifiers from the shell.

Operators and help-desk staff get asked "why does the site reject my number?"
all day.  ``idp id check NUMBER`` answers with the same precise reason the
site gives, or shows what the number encodes.  The group is registered under
the ``idp`` console script elsewhere; this module only defines it.

Output contract (scripts rely on it): a valid number prints a summary (or one
JSON object with ``--json``) to stdout and exits 0; an invalid one prints
exactly one line to stderr and exits 1.
"""

from __future__ import annotations

import json
from typing import Any

import click

from idp.identity.describe import describe
from idp.identity.errors import (
    InvalidCreditCode,
    InvalidIdentifier,
    InvalidIdNumber,
    InvalidOrgCode,
)

id_group = click.Group("id", help="Check identifiers (ID numbers, credit codes). 证件号码工具。")

_SEX_LABELS = {"M": "男 M", "F": "女 F"}

# (key in describe()'s result, label); rows whose key is absent are skipped.
_ROWS: tuple[tuple[str, str], ...] = (
    ("normalised", "号码/number"),
    ("region", "地区/region"),
    ("birth_date", "出生日期/birth date"),
    ("sex", "性别/sex"),
    ("nationality_code", "国籍代码/nationality code"),
    ("authority", "登记管理部门/registration authority"),
    ("org_type", "机构类别/organisation type"),
    ("organisation_code", "组织机构代码/organisation code"),
)


def _error_line(error: InvalidIdentifier) -> str:
    """One line naming what the input was taken for and why it is invalid."""
    subject = ""
    # Most specific class first: InvalidOrgCode is an InvalidCreditCode.
    if isinstance(error, InvalidOrgCode):
        subject = "组织机构代码/organisation code "
    elif isinstance(error, InvalidCreditCode):
        subject = "统一社会信用代码/credit code "
    elif isinstance(error, InvalidIdNumber):
        subject = "身份证号码/ID number "
    return f"无效/invalid {subject}— {error.one_line()}"


def _summary_lines(info: dict[str, Any]) -> list[str]:
    lines = [f"类型/kind: {info['kind_label']} {info['kind']}"]
    for key, label in _ROWS:
        if key not in info:
            continue
        value = info[key]
        if key == "region" and info.get("province"):
            value = f"{value} {info['province']}"
        elif key == "sex":
            value = _SEX_LABELS[value]
        elif key == "authority":
            value = f"{info['authority_code']} {value}"
        elif key == "org_type":
            value = f"{info['org_type_code']} {value}"
        lines.append(f"{label}: {value}")
    if info.get("converted_from_15"):
        lines.append("备注/note: 由 15 位旧号码转换 converted from a legacy 15-digit number")
    lines.append("结果/result: 有效 valid")
    return lines


@id_group.command("check")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def check(number: str, as_json: bool) -> None:
    """Validate NUMBER and show what it encodes. 校验证件号码并显示其含义。

    NUMBER may be a resident ID / residence permit / foreigner permanent
    residence ID number (18 or 15 digits), a unified social credit code or an
    organisation code.  Quote it if it contains spaces.
    """
    try:
        info = describe(number)
    except InvalidIdentifier as error:
        if as_json:
            click.echo(json.dumps({"error": error.message_en, "message": error.message,
                                   "code": error.code, "expected": error.expected},
                                  ensure_ascii=False), err=True)
        else:
            click.echo(_error_line(error), err=True)
        raise SystemExit(1) from None
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, sort_keys=True))
        return
    for line in _summary_lines(info):
        click.echo(line)
