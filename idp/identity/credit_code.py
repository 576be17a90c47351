"""Unified social credit codes (GB 32100-2015) and legacy organisation codes (GB 11714).

Legal persons log in to government services with their 统一社会信用代码.
Older systems we import from still hold the 9-character 组织机构代码 that
was the organisation's identifier before 2015; the credit code embeds it in
positions 9–17, which is how :func:`credit_code_embeds` links the two.

Layout of a credit code (18 characters over ``0-9 A-H J-N P-R T U W-Y``,
i.e. without I, O, S, V, Z):

* 1: registration authority (登记管理部门码), see :data:`AUTHORITIES`;
* 2: organisation type (机构类别码), must be one allowed for that authority;
* 3–8: administrative region code of the registering authority (digits;
  the first two must be a mainland province or 10 for national level);
* 9–17: the organisation code, whose 9th character is its own GB 11714
  check character;
* 18: GB 32100 MOD 31 check character.

We check all of the above, in that order, and report the first failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

# python-stdnum's USCC module computes the MOD 31 check character correctly and
# we use it for that.  We do not use ``uscc.validate``: it requires the first 8
# characters to be digits and so rejects every code whose registration
# authority is a letter (A 中央军委改革和编制办公室, N 农业, Y 其他).  It also
# checks neither the authority/type pair, nor the region, nor the embedded
# organisation code's own check character; this module adds those.
from stdnum.cn import uscc

from idp.identity.errors import InvalidCreditCode, InvalidOrgCode, describe_char
from idp.identity.normalize import normalize_identifier
from idp.identity.regions import registration_province

#: GB 32100 character set: digits and upper-case letters except I, O, S, V, Z.
CREDIT_CODE_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CHARS = frozenset(CREDIT_CODE_ALPHABET)

#: GB 11714 organisation code characters: digits and upper-case Latin letters.
_ORG_BODY_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ORG_CHECK_CHARS = frozenset("0123456789X")
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True, slots=True)
class Authority:
    """A registration authority and the organisation types it may assign."""

    name: str
    org_types: MappingProxyType[str, str]


def _authority(name: str, org_types: dict[str, str]) -> Authority:
    return Authority(name, MappingProxyType(org_types))


#: GB 32100-2015 Table 1 as amended (A added by amendment No. 1 in 2016, N for
#: agriculture added later): registration authority code → name and its
#: organisation type codes.  Y (其他) has no sub-types and always uses 1.
AUTHORITIES: Final = MappingProxyType(
    {
        "1": _authority(
            "机构编制",
            {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"},
        ),
        "2": _authority("外交", {"1": "外国常住新闻机构", "9": "其他"}),
        "3": _authority(
            "司法行政",
            {
                "1": "律师执业机构",
                "2": "公证处",
                "3": "基层法律服务所",
                "4": "司法鉴定机构",
                "5": "仲裁委员会",
                "9": "其他",
            },
        ),
        "4": _authority("文化", {"1": "外国在华文化中心", "9": "其他"}),
        "5": _authority(
            "民政", {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"}
        ),
        "6": _authority(
            "旅游",
            {
                "1": "外国旅游部门常驻代表机构",
                "2": "港澳台地区旅游部门常驻内地（大陆）代表机构",
                "9": "其他",
            },
        ),
        "7": _authority("宗教", {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"}),
        "8": _authority("工会", {"1": "基层工会", "9": "其他"}),
        "9": _authority("工商", {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}),
        "A": _authority("中央军委改革和编制办公室", {"1": "军队事业单位", "9": "其他"}),
        "N": _authority(
            "农业",
            {
                "1": "组级集体经济组织",
                "2": "村级集体经济组织",
                "3": "乡镇级集体经济组织",
                "9": "其他",
            },
        ),
        "Y": _authority("其他", {"1": "其他"}),
    }
)


@dataclass(frozen=True, slots=True)
class OrgCode:
    """A validated 9-character organisation code (GB 11714)."""

    code: str

    @property
    def formatted(self) -> str:
        """The customary printed form ``XXXXXXXX-X``."""
        return f"{self.code[:8]}-{self.code[8]}"

    def __str__(self) -> str:
        return self.formatted


@dataclass(frozen=True, slots=True)
class CreditCode:
    """A validated unified social credit code and what it tells us."""

    code: str
    authority_code: str
    authority_name: str
    org_type_code: str
    org_type_name: str
    region_code: str
    province: str
    organisation_code: str  # formatted "XXXXXXXX-X"

    @property
    def org_code(self) -> OrgCode:
        """The embedded legacy organisation code."""
        return OrgCode(self.code[8:17])


def compute_credit_check_char(first17: str) -> str:
    """Return the GB 32100 MOD 31 check character for the first 17 characters."""
    if len(first17) != 17:
        raise InvalidCreditCode(
            "length",
            f"长度错误：计算校验码需要 17 位，实际为 {len(first17)} 位",
            f"wrong length: the check character is computed over 17 characters, got {len(first17)}",
        )
    for index, char in enumerate(first17):
        if char not in _CREDIT_CHARS:
            raise _credit_charset_error(char, index + 1)
    return uscc.calc_check_digit(first17)


def compute_org_check_char(body8: str) -> str:
    """Return the GB 11714 check character for an 8-character organisation code body.

    Characters count as 0–9 for digits and 10–35 for A–Z; weights are
    3, 7, 9, 10, 5, 8, 4, 2; the check value is ``11 - sum % 11`` with 10
    written ``X`` and 11 written ``0``.
    """
    if len(body8) != 8 or any(c not in _ORG_BODY_CHARS for c in body8):
        raise InvalidOrgCode(
            "charset",
            "组织机构代码本体应为 8 位数字或大写字母",
            "an organisation code body is 8 digits or upper-case letters",
        )
    total = sum(_org_char_value(c) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def parse_org_code(text: str) -> OrgCode:
    """Validate a legacy organisation code, with or without the hyphen.

    Raises :class:`InvalidOrgCode` (``empty``, ``charset``, ``length``,
    ``org_code_check`` with ``expected``).
    """
    code = normalize_identifier(text)
    if not code:
        raise InvalidOrgCode("empty", "组织机构代码为空", "the organisation code is empty")
    if len(code) != 9:
        raise InvalidOrgCode(
            "length",
            f"长度错误：组织机构代码应为 9 位（可写作 XXXXXXXX-X），实际为 {len(code)} 位",
            f"wrong length: an organisation code has 9 characters (XXXXXXXX-X), got {len(code)}",
        )
    for index, char in enumerate(code[:8]):
        if char not in _ORG_BODY_CHARS:
            raise _org_charset_error(char, index + 1)
    if code[8] not in _ORG_CHECK_CHARS:
        raise _org_charset_error(code[8], 9)
    _check_org_code(code, offset=0, error=InvalidOrgCode)
    return OrgCode(code)


def parse_credit_code(text: str) -> CreditCode:
    """Validate a unified social credit code and decode its parts.

    Raises :class:`InvalidCreditCode` with ``code`` one of ``empty``,
    ``charset``, ``length``, ``authority``, ``org_type``, ``region``,
    ``org_code_check`` and ``check_digit`` (the last two with ``expected``).
    """
    code = normalize_identifier(text)
    if not code:
        raise InvalidCreditCode("empty", "代码为空", "the credit code is empty")
    for index, char in enumerate(code):
        if char not in _CREDIT_CHARS:
            raise _credit_charset_error(char, index + 1)
    if len(code) != 18:
        raise InvalidCreditCode(
            "length",
            f"长度错误：统一社会信用代码应为 18 位，实际为 {len(code)} 位",
            f"wrong length: a unified social credit code has 18 characters, got {len(code)}",
        )

    authority = AUTHORITIES.get(code[0])
    if authority is None:
        raise InvalidCreditCode(
            "authority",
            f"第 1 位登记管理部门码“{code[0]}”无效，应为 1–9、A、N 或 Y",
            f"invalid registration authority '{code[0]}' at position 1: expected 1-9, A, N or Y",
            position=1,
        )
    org_type_name = authority.org_types.get(code[1])
    if org_type_name is None:
        allowed = "、".join(authority.org_types)
        raise InvalidCreditCode(
            "org_type",
            f"第 2 位机构类别码“{code[1]}”无效：登记管理部门“{authority.name}”只使用 {allowed}",
            f"invalid organisation type '{code[1]}' at position 2 for registration"
            f" authority '{code[0]}': expected one of {', '.join(authority.org_types)}",
            position=2,
        )

    region_code = code[2:8]
    province = registration_province(region_code[:2]) if region_code.isdigit() else None
    if province is None:
        raise InvalidCreditCode(
            "region",
            "第 3–8 位登记管理机关行政区划码无效",
            "invalid registration region code at positions 3-8",
            position=3,
        )

    _check_org_code(code[8:17], offset=8, error=InvalidCreditCode)

    expected = compute_credit_check_char(code[:17])
    if code[17] != expected:
        raise InvalidCreditCode(
            "check_digit",
            f"校验码错误：最后一位应为 {expected}",
            f"check character should be '{expected}'",
            expected=expected,
            position=18,
        )

    return CreditCode(
        code=code,
        authority_code=code[0],
        authority_name=authority.name,
        org_type_code=code[1],
        org_type_name=org_type_name,
        region_code=region_code,
        province=province,
        organisation_code=OrgCode(code[8:17]).formatted,
    )


def is_valid_credit_code(text: str) -> bool:
    """``True`` if :func:`parse_credit_code` accepts ``text``."""
    try:
        parse_credit_code(text)
    except InvalidCreditCode:
        return False
    return True


def org_code_of(credit_code: str) -> str:
    """The organisation code embedded in a (validated) credit code, as ``XXXXXXXX-X``."""
    return parse_credit_code(credit_code).organisation_code


def credit_code_embeds(credit_code: str, org_code: str) -> bool:
    """Whether ``credit_code`` embeds the legacy ``org_code`` (hyphen optional).

    Both are validated first and invalid input raises rather than returning
    ``False``: during an import a malformed legacy code is a data error the
    operator must see, not a silent non-match.
    """
    return parse_credit_code(credit_code).org_code == parse_org_code(org_code)


def _org_char_value(char: str) -> int:
    return int(char) if char.isdigit() else ord(char) - ord("A") + 10


def _check_org_code(code9: str, *, offset: int, error: type[InvalidCreditCode]) -> None:
    expected = compute_org_check_char(code9[:8])
    if code9[8] != expected:
        where_zh = f"第 {offset + 9} 位" if offset else "最后一位"
        where_en = f"position {offset + 9}" if offset else "the last character"
        raise error(
            "org_code_check",
            f"组织机构代码校验码错误：{where_zh}应为 {expected}",
            f"organisation code check character at {where_en} should be '{expected}'",
            expected=expected,
            position=offset + 9,
        )


def _credit_charset_error(char: str, position: int) -> InvalidCreditCode:
    shown = describe_char(char)
    return InvalidCreditCode(
        "charset",
        f"第 {position} 位字符“{shown}”无效：统一社会信用代码只使用数字和大写字母"
        f"（不含 I、O、S、V、Z）",
        f"invalid character '{shown}' at position {position}: credit codes use digits and"
        f" upper-case letters except I, O, S, V, Z",
        position=position,
    )


def _org_charset_error(char: str, position: int) -> InvalidOrgCode:
    shown = describe_char(char)
    return InvalidOrgCode(
        "charset",
        f"第 {position} 位字符“{shown}”无效：组织机构代码只使用数字和大写字母，校验位为数字或 X",
        f"invalid character '{shown}' at position {position}: organisation codes use digits and"
        f" upper-case letters, with a digit or X as check character",
        position=position,
    )
