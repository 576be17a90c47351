"""The elder-friendly display (适老化): large text and high contrast, one tap away on every
page and remembered by the browser (a cookie holding only ``elder``), with no script —
the switch is a plain link that sets the cookie and comes back to the same page
(``idp.ui.display_toggle_url`` builds it for every page)."""

from __future__ import annotations

from flask import Blueprint, redirect, request

from .ui import DISPLAY_COOKIE, is_safe_local_path

bp = Blueprint("display", __name__)

YEAR = 365 * 86400


@bp.get("/display/<any(elder, standard):mode>")
def switch(mode: str):
    back = request.args.get("next", "/")
    if len(back) > 2000 or not is_safe_local_path(back):
        back = "/"
    resp = redirect(back, 303)
    if mode == "elder":
        resp.set_cookie(DISPLAY_COOKIE, "elder", max_age=YEAR, samesite="Lax", httponly=True,
                        path="/")
    else:
        resp.delete_cookie(DISPLAY_COOKIE, path="/", samesite="Lax", httponly=True)
    return resp
