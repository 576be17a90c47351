"""Which claims each scope releases, and how the consent page describes them."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core import UserInfo
from flask_babel import lazy_gettext as _l

from ..identity.masking import mask_id_number
from ..models import Person

# Scopes that release data a client must be registered for (Client.allowed_sensitive_scopes).
SENSITIVE_SCOPES = frozenset({"idcard"})

SCOPES_SUPPORTED = ["openid", "profile", "phone", "idcard", "offline_access", "org", "legacy"]

# What the consent page says each scope gives away, in the person's words.
SCOPE_DESCRIPTIONS = {
    "openid": _l("确认您的身份（一个不含个人信息的用户标识）"),
    "profile": _l("您的姓名和部分隐藏的身份证号码（如 110105********002X）"),
    "phone": _l("您的手机号码"),
    "idcard": _l("您的完整身份证号码"),
    "offline_access": _l("在您离开后继续访问上述信息（长期有效的授权）"),
    "legacy": _l("您在本应用原有系统中的账号编号"),
    "org": _l("您选择代表的企业或组织（名称、统一社会信用代码、您的角色和业务范围）"),
}

# The scope that covers each claim a client may ask for by name (the ``claims`` request
# parameter, idp.oidc.claims_request): the client gets it only if it is allowed that
# scope, so ``id_number`` by name still needs the ``idcard`` registration.
CLAIM_SCOPES = {
    "name": "profile", "id_number_masked": "profile", "id_type": "profile",
    "phone_number": "phone", "phone_number_verified": "phone",
    "id_number": "idcard", "legacy_accounts": "legacy",
}

# How the consent page names a claim asked for on its own.
CLAIM_DESCRIPTIONS = {
    "name": _l("您的姓名"),
    "id_number_masked": _l("部分隐藏的身份证号码"),
    "id_type": _l("您的证件类型"),
    "phone_number": _l("您的手机号码"),
    "phone_number_verified": _l("您的手机号码是否已验证"),
    "id_number": _l("您的完整身份证号码"),
    "legacy_accounts": _l("您在本应用原有系统中的账号编号"),
}

CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash",
    "name", "id_number_masked", "id_type", "phone_number", "phone_number_verified", "id_number",
    "org", "legacy_accounts",
]


def user_claims(person: Person, scope: str, sub: str) -> UserInfo:
    """Claims about ``person`` released under ``scope`` (ID token and userinfo alike);
    ``sub`` is what this client knows the person as (public or pairwise)."""
    scopes = set(scope_to_list(scope) or [])
    info = UserInfo(sub=sub)
    if "profile" in scopes:
        info["name"] = person.name
        info["id_number_masked"] = mask_id_number(person.id_number)
        info["id_type"] = person.id_kind
    if "phone" in scopes and person.phone:
        info["phone_number"] = person.phone
        info["phone_number_verified"] = True
    if "idcard" in scopes:
        # Reaches here only if the client is registered for it (get_allowed_scope
        # drops it otherwise) and the person consented.
        info["id_number"] = person.id_number
        info["id_type"] = person.id_kind
    return info


def named_claims(person: Person, names, sub: str, client) -> dict:
    """The values of the claims asked for by name (already decided releasable: see
    idp.oidc.claims_request.released), read as their covering scopes would."""
    names = [n for n in names or () if n in CLAIM_SCOPES]
    if not names:
        return {}
    full = dict(user_claims(person, " ".join({CLAIM_SCOPES[n] for n in names}), sub))
    out = {n: full[n] for n in names if n in full}
    if "legacy_accounts" in names and client is not None:
        out["legacy_accounts"] = legacy_claim(person.id, client)
    return out


def legacy_claim(person_id: str, client) -> list[dict]:
    """The (system, legacy id) pairs linked to the person, only for the legacy systems
    this client is registered for: a relying party learns its own old ids, no others."""
    systems = client.meta("legacy_systems") or []
    if not systems:
        return []
    from ..extensions import db
    from ..models import LegacyAccount

    rows = db.session.execute(db.select(LegacyAccount.source, LegacyAccount.legacy_id).where(
        LegacyAccount.person_id == person_id, LegacyAccount.source.in_(systems),
        LegacyAccount.state.in_(("merged", "created")))).all()
    return [{"system": s, "legacy_id": i} for s, i in sorted(rows)]


def describe_claims(names) -> list[tuple[str, str]]:
    return [(n, str(CLAIM_DESCRIPTIONS[n])) for n in names if n in CLAIM_DESCRIPTIONS]


def describe_scopes(scope: str) -> list[tuple[str, str]]:
    return [(s, str(SCOPE_DESCRIPTIONS[s]))
            for s in scope_to_list(scope) or [] if s in SCOPE_DESCRIPTIONS]
