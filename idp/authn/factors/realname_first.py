"""The step before any factor when an account below ``L3`` is asked for ``L3`` or more:
verify its real name against the register (:mod:`idp.authn.realname`), which raises the
account to ``L3``. Not an authenticator (it proves nothing about who holds the session,
only what the account is), so it is a step of its own."""

from __future__ import annotations

from flask_babel import gettext as _

from .. import realname
from .base import Goal, Outcome

ACTION = "realname"

_ERRORS = {
    "invalid_number": lambda: _("证件号码格式不正确，请核对后重新输入。"),
    "not_own": lambda: _("姓名或证件号码与本账号登记的信息不一致。"),
    "mismatch": lambda: _("实名核验未通过：姓名与证件号码不匹配。"),
    "not_in_register": lambda: _("实名核验未通过：未在人口信息库中查到该证件号码，"
                                 "请到政务服务大厅窗口办理。"),
    "too_many": lambda: _("今日实名核验次数已用完，请明天再试或到政务服务大厅窗口办理。"),
    "unavailable": lambda: _("实名核验服务暂时不可用，请稍后再试。"),
}


def handle(form, goal: Goal, client_id: str | None) -> Outcome:
    # Refusals are audited by realname.verify_person itself ("assurance.refused").
    result = realname.verify_person(goal.person, form.get("name", ""),
                                    form.get("id_number", ""), client_id=client_id)
    if result.ok:
        return Outcome(notice=_("实名核验已通过。请再完成一项验证。"))
    return Outcome(error=_ERRORS.get(result.reason, _ERRORS["unavailable"])())
