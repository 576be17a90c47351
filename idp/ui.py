"""Page language: zh-CN first, English on request (``ui_locales``, ``?lang=``)."""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app, request, session

_ALIASES = {"zh": "zh_CN", "zh-cn": "zh_CN", "zh_cn": "zh_CN", "zh-hans": "zh_CN",
            "en": "en", "en-us": "en", "en-gb": "en", "en_us": "en"}


def _match(tag: str | None) -> str | None:
    if not tag:
        return None
    return _ALIASES.get(tag.strip().lower())


def pick_locale_from(ui_locales: str | None) -> None:
    """Remember the first supported language of an OIDC ``ui_locales`` list."""
    for tag in (ui_locales or "").split():
        lang = _match(tag)
        if lang:
            session["lang"] = lang
            return


def select_locale() -> str:
    lang = _match(request.args.get("lang"))
    if lang:
        session["lang"] = lang
        return lang
    return session.get("lang") or current_app.config["LANGUAGES"][0]


def template_context() -> dict:
    """Template helpers: the current language and a link to the other one."""
    from flask_babel import get_locale

    lang = str(get_locale() or "zh_CN")
    other = "zh" if lang == "en" else "en"
    args = request.args.to_dict()
    args["lang"] = other
    switch = request.path + "?" + "&".join(
        f"{k}={quote(v, safe='')}" for k, v in args.items())
    return {"page_lang": "en" if lang == "en" else "zh-CN",
            "switch_lang_url": switch, "switch_lang_label": "中文" if lang == "en" else "English"}
