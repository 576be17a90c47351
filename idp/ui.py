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
            "switch_lang_label": "中文" if lang == "en" else "English",
            "elder_mode": elder_mode(), "display_toggle_url": display_toggle_url(),
            "local_time": local_time, "zone_label": zone_label,
            "request_deadline": _request_deadline}


def request_deadline(req) -> dict:
    """What a page says about the time left on a pending sign-in request: seconds, the
    local time (with its zone), whether another extension is possible, the warning
    threshold."""
    import time

    from .interaction.request import max_expiry

    cfg = current_app.config
    expires = req.expires or (req.created + int(cfg["AUTH_REQUEST_TTL"]))
    left = max(0, int(expires - time.time()))
    return {"rid": req.id, "seconds": left, "minutes": max(1, -(-left // 60)),
            "at": local_time(expires, seconds=True), "expires": int(expires),
            "warn": int(cfg["AUTH_REQUEST_WARN_SECONDS"]),
            "final": expires >= max_expiry(req) - 1}


def _request_deadline(rid):
    """For a page's template: the deadline of this browser's live request ``rid``."""
    from .interaction.request import load

    if not isinstance(rid, str) or not rid:
        return None
    req = load(rid)
    return request_deadline(req) if req is not None else None


# -- the elder-friendly display (idp.display switches it)

DISPLAY_COOKIE = "idp_display"


def elder_mode() -> bool:
    return request.cookies.get(DISPLAY_COOKIE) == "elder"


def display_toggle_url() -> str:
    """The link that switches to the other display and comes back to this page."""
    here = request.full_path if request.query_string else request.path
    if request.url_rule is None or not is_safe_local_path(here):
        here = "/"
    try:
        return url_for("display.switch", mode="standard" if elder_mode() else "elder",
                       next=here)
    except BuildError:  # an app without the display pages (some tests)
        return "/"


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


# -- one time zone for every time shown to a person (TIME_ZONE, Asia/Shanghai by default)


def _zone():
    import zoneinfo

    return zoneinfo.ZoneInfo(current_app.config.get("TIME_ZONE") or "Asia/Shanghai")


def local_time(ts: float | None, *, seconds: bool = False, zone: bool = True) -> str:
    """``2026-12-07 23:45 北京时间`` (or the zone's UTC offset outside China): a time as
    people read it, with its zone named, never a bare UTC time."""
    import datetime as dt

    if ts is None:
        return ""
    when = dt.datetime.fromtimestamp(float(ts), _zone())
    text = when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {zone_label(when)}" if zone else text


def zone_label(when=None) -> str:
    """The zone's name for people: 北京时间 / Beijing time for Asia/Shanghai (and the other
    UTC+8 zones of China), else its UTC offset."""
    import datetime as dt

    from flask_babel import gettext as _

    when = when or dt.datetime.now(_zone())
    name = current_app.config.get("TIME_ZONE") or "Asia/Shanghai"
    if name in ("Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "Asia/Urumqi", "PRC"):
        if when.utcoffset() == dt.timedelta(hours=8):
            return _("北京时间")
    offset = when.utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
