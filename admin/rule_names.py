"""Plain-language names of the matcher's rules (why an item is in the review queue), in
zh-CN with English in messages.po. Unknown codes are shown as they are."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

RULES = {
    "id_number_name_differs": _l("证件号码相同，但姓名不同"),
    "ambiguous_two_people": _l("可能对应两个不同的人"),
    "no_id_number": _l("旧账号没有证件号码"),
    "no_match_untrusted_source": _l("没有匹配的账号，且来源系统不可信，不能自动新建"),
    "phone_of_another_person": _l("手机号码属于另一个账号"),
    "weak_phone_and_name": _l("只有手机号码和姓名相符，证据不足"),
    "trusted_source_new_person": _l("可信来源的新人员"),
    "id_number_and_name": _l("证件号码和姓名都相符"),
    "invalid_id_number": _l("证件号码无效"),
    "org_ambiguous_org_code": _l("组织机构代码对应多个组织"),
    "org_code_in_credit_code": _l("由信用代码中的组织机构代码找到"),
    "org_code_mismatch": _l("组织机构代码与信用代码不一致"),
    "org_code_name_differs": _l("组织机构代码相同，但名称不同"),
    "org_code_of_another_org": _l("组织机构代码属于另一个组织"),
    "org_code_only": _l("只有组织机构代码，没有信用代码"),
    "org_credit_code": _l("统一社会信用代码相符"),
    "org_name_unknown": _l("旧账号和登记机关都没有组织名称"),
    "org_no_code": _l("旧账号没有任何代码"),
    "org_no_match_untrusted_source": _l("没有匹配的组织，且来源系统不可信"),
    "org_trusted_source_new": _l("可信来源的新组织"),
    "invalid_credit_code": _l("统一社会信用代码无效"),
    "invalid_org_code": _l("组织机构代码无效"),
}


def rule_name(code: str) -> str:
    text = RULES.get(code)
    return str(text) if text is not None else code
