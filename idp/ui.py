"""Page language: zh-CN first, English on request (``ui_locales``, ``?lang=``)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from flask import current_app, request, session, url_for
from werkzeug.routing import BuildError

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
    return {"page_lang": "en" if lang == "en" else "zh-CN",
            "switch_lang_url": switch_lang_url(other),
            "switch_lang_label": "中文" if lang == "en" else "English"}


def switch_lang_url(lang: str) -> str:
    """This page in ``lang``: its route rebuilt with ``url_for`` (never the raw request
    path — ``/\\evil.example/`` is another site to a browser), the query kept."""
    query = [(k, v) for k, values in request.args.lists() if k != "lang" for v in values]
    return _this_path() + "?" + urlencode([*query, ("lang", lang)])


def _this_path() -> str:
    if request.url_rule is not None and request.endpoint:
        try:
            path = url_for(request.endpoint, **(request.view_args or {}))
        except BuildError:
            return "/"
        return path if is_safe_local_path(path) else "/"
    # No route (a 404, a 405): the same path only when it cannot leave this site.
    if is_safe_local_path(request.path):
        return request.script_root + quote(request.path, safe="/:@!$&'()*+,;=-._~")
    return "/"


def is_safe_local_path(path: str) -> bool:
    """A path on this site however a browser reads it: browsers take a backslash for
    ``/`` and drop tabs and newlines, so ``//x``, ``/\\x`` and ``/`` + tab + ``/x`` all
    name the host x."""
    return (path.startswith("/") and not path.startswith("//") and "\\" not in path
            and all(ch.isprintable() and not ch.isspace() for ch in path))
