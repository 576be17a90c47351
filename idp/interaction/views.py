"""``POST /login/extend``: more time for the sign-in request a page serves (WCAG 2.2.1).

The sign-in, registration, recovery, step-up and consent pages say by when the request
must be finished and, shortly before, offer "延长时间" (``static/deadline.js``). The
button posts ``rid`` with the page's CSRF token; the request — this browser's, still
live — is re-sealed with a later expiry (:func:`.request.extend`), capped at
``AUTH_REQUEST_MAX_AGE`` after it started. A script gets JSON; a plain form post is sent
back to the page it came from (``back``, a local path).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, request
from flask_babel import gettext as _

from ..ui import is_safe_local_path, request_deadline
from . import request as pending

bp = Blueprint("interaction", __name__)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


@bp.post("/login/extend")
def extend():
    req = pending.load(request.form.get("rid"))
    if req is None:
        if _wants_json():
            return jsonify(error="request_expired",
                           error_description=_("登录请求已过期，无法延长，请重新开始。")), 400
        return pending.expired_page()
    extended = pending.extend(req)
    info = request_deadline(req)
    if not _wants_json():
        back = request.form.get("back", "")
        return redirect(back if isinstance(back, str) and is_safe_local_path(back)
                        and len(back) < 2048 else "/", code=303)
    if extended and info["final"]:
        message = _("已延长至最长办理时限。请在 %(at)s 前完成（约 %(minutes)d 分钟），"
                    "之后不能再延长。", at=info["at"], minutes=info["minutes"])
    elif extended:
        message = _("已延长。请在 %(at)s 前完成（约 %(minutes)d 分钟）。", at=info["at"],
                    minutes=info["minutes"])
    else:
        message = _("已达到最长办理时限，无法继续延长。请在 %(at)s 前完成。", at=info["at"])
    resp = jsonify(extended=extended, expires_in=info["seconds"], deadline=info["at"],
                   minutes=info["minutes"], final=info["final"], message=message)
    resp.headers["Cache-Control"] = "no-store"
    return resp
