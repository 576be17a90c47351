"""Demo consoles for a service-hall counter clerk (/demo/hall) and a hotline agent
(/demo/hotline).

Each console plays the relying party that a hall or call-centre system would be: it
runs server-side, holds the demo client's secret (instance/demo_clients.json, written
by ``idp init --demo``) and talks to the provider only over HTTP — ``/bc-authorize``,
``/token`` and, for the hotline, the SMS read-back — exactly as an outside system
would. It never shows a token: only the ID token's claims, masked, so that the clerk
sees whom the provider vouched for, how strongly, and that the clerk is recorded.

Off with ``CHANNEL_DEMOS = False``: anyone who reaches these pages can send approval
requests and SMS codes to any citizen.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import requests
from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from joserfc import jwt
from joserfc.errors import JoseError

from ..identity.masking import mask_name, mask_phone
from ..oidc.tokens import issuer, keyring
from ..store import store

bp = Blueprint("ciba_demo", __name__, url_prefix="/demo")

CONSOLES = {
    "hall": {"client_id": "demo-hall", "staff": "clerk-0001"},
    "hotline": {"client_id": "demo-hotline", "staff": "agent-0001"},
}
SCOPE = "openid profile phone"
_SESSION_KEY = "ciba_demo"


def _console(kind: str) -> dict:
    if kind not in CONSOLES:
        abort(404)
    return CONSOLES[kind]


def _provider() -> str:
    return (current_app.config.get("CIBA_DEMO_PROVIDER_URL") or issuer()).rstrip("/")


def _credentials(client_id: str) -> tuple[str, str] | None:
    from .seed import secrets_path

    try:
        with open(secrets_path(), encoding="utf-8") as fh:
            secret = json.load(fh).get(client_id)
    except (OSError, ValueError):
        return None
    return (client_id, secret) if secret else None


def _call(path: str, auth: tuple[str, str], data: dict[str, str]) -> tuple[int, dict]:
    """POST to one of the provider's own endpoints; (status, JSON body). A provider
    that cannot be reached is status 0, so pages can say so instead of failing."""
    try:
        resp = requests.post(_provider() + path, auth=auth, data=data, timeout=10)
        body = resp.json()
    except (requests.RequestException, ValueError):
        return 0, {"error": "unreachable"}
    return resp.status_code, body if isinstance(body, dict) else {}


def _message(error: str | None, *, sms: bool = False) -> str:
    if error == "temporarily_unavailable" and not sms:
        # From /bc-authorize: too many look-ups of unknown people, or requests waiting.
        return _("请求过于频繁，或该群众已有多条待确认的请求，请稍后再试。")
    messages = {
        "unknown_user_id": _("未找到该证件号码或手机号码对应的用户。"),
        "invalid_binding_message": _("核对短语无效：必填，最多 64 个字符。"),
        "access_denied": _("该用户的账号当前不可用。"),
        "invalid_request": _("请求不完整，请检查所填内容。"),
        "unreachable": _("无法连接认证平台，请稍后再试。"),
        "temporarily_unavailable": _("短信暂时无法发送（发送过于频繁或通道故障），请稍后再试。"),
        "unmet_authentication_requirements": _("短信验证码达不到本业务要求的认证等级。"),
        "invalid_client": _("演示柜台的应用凭据无效，请重新运行 idp init --demo。"),
    }
    return messages.get(error or "", _("认证平台拒绝了请求（%(code)s）。", code=error or "?"))


def _state_key(ref: str) -> str:
    return f"ciba_demo:{ref}"


def _load(kind: str, ref: str) -> dict[str, Any]:
    # The reference lives in this browser's signed session too: another browser that
    # learns the URL sees nothing.
    if ref not in session.get(_SESSION_KEY, []):
        abort(404)
    state = store().get(_state_key(ref))
    if state is None or state.get("kind") != kind:
        abort(404)
    return state


def _save(ref: str, state: dict[str, Any]) -> None:
    store().set(_state_key(ref), state, max(60.0, state["expires"] - time.time()) + 600)


@bp.route("/<kind>", methods=["GET", "POST"])
def console(kind: str):
    cfg = _console(kind)
    form = {"login_hint": "", "binding_message": "", "acting_party": cfg["staff"],
            "in_person_check": ""}
    error = None
    if request.method == "POST":
        form = {k: (request.form.get(k) or "").strip() for k in form}
        auth = _credentials(cfg["client_id"])
        if auth is None:
            error = _("演示柜台尚未初始化：请先运行 idp init --demo。")
        else:
            sent = {k: v for k, v in form.items() if v}
            status, body = _call("/bc-authorize", auth, {**sent, "scope": SCOPE})
            if status == 200 and body.get("auth_req_id"):
                ref = secrets.token_urlsafe(16)
                now = time.time()
                _save(ref, {"kind": kind, "auth_req_id": body["auth_req_id"],
                            "interval": int(body.get("interval") or 5),
                            "expires": now + int(body.get("expires_in") or 300),
                            "last_poll": 0.0, "state": "pending",
                            "binding_message": form["binding_message"],
                            "acting_party": form["acting_party"], "sms_sent": None})
                session[_SESSION_KEY] = (session.get(_SESSION_KEY, []) + [ref])[-10:]
                return redirect(url_for("ciba_demo.status", kind=kind, ref=ref))
            error = _message(body.get("error"))
    if not form["binding_message"]:
        n = f"{secrets.randbelow(10000):04d}"
        form["binding_message"] = (_("窗口核对码 %(n)s", n=n) if kind == "hall"
                                   else _("热线核对码 %(n)s", n=n))
    return render_template(f"{kind}.html", form=form, error=error), 400 if error else 200


def _masked_claims(id_token: str, client_id: str) -> dict[str, Any] | None:
    """The ID token's claims once its signature, issuer and audience check out, with
    personal data masked for the clerk's screen."""
    try:
        claims = jwt.decode(id_token, keyring().public_keys(),
                            algorithms=keyring().algorithms()).claims
    except (JoseError, ValueError, TypeError):
        return None
    aud = claims.get("aud")
    if claims.get("iss") != issuer() or client_id not in (aud if isinstance(aud, list)
                                                          else [aud]):
        return None
    return {
        "sub": str(claims.get("sub", ""))[:8] + "…",
        "name": mask_name(claims["name"]) if claims.get("name") else None,
        "id_number_masked": claims.get("id_number_masked"),
        "phone_number": mask_phone(claims["phone_number"]) if claims.get("phone_number")
        else None,
        "acr": claims.get("acr"), "amr": claims.get("amr") or [],
        "channel": claims.get("channel"), "act": claims.get("act"),
        # Shown through idp.ui.local_time: the configured zone, named (not the server's).
        "auth_time": int(claims.get("auth_time", 0)),
    }


def _poll(kind: str, state: dict[str, Any]) -> None:
    """One token request, at most once per interval, the way a polling client must."""
    now = time.time()
    if state["state"] != "pending" or now - state["last_poll"] < state["interval"]:
        return
    if now >= state["expires"]:
        state["state"] = "expired"
        return
    cfg = CONSOLES[kind]
    auth = _credentials(cfg["client_id"])
    if auth is None:
        state.update(state="error", error=_message("invalid_client"))
        return
    state["last_poll"] = now
    status, body = _call("/token", auth, {"grant_type": "urn:openid:params:grant-type:ciba",
                                          "auth_req_id": state["auth_req_id"]})
    err = body.get("error")
    if status == 200 and body.get("id_token"):
        claims = _masked_claims(body["id_token"], cfg["client_id"])
        if claims is None:
            state.update(state="error", error=_("身份令牌校验失败。"))
        else:
            state.update(state="approved", claims=claims)
    elif err == "authorization_pending":
        pass
    elif err == "slow_down":
        state["interval"] += 5  # CIBA §11: and for every later poll too
    elif err == "access_denied":
        state["state"] = "denied"
    elif err == "expired_token":
        state["state"] = "expired"
    else:
        state.update(state="error", error=_message(err))


@bp.get("/<kind>/r/<ref>")
def status(kind: str, ref: str):
    _console(kind)
    state = _load(kind, ref)
    _poll(kind, state)
    _save(ref, state)
    notice = session.pop("ciba_demo_notice", None)
    resp = current_app.make_response(render_template(
        f"{kind}_status.html", s=state, ref=ref, notice=notice,
        remaining=max(0, int(state["expires"] - time.time()))))
    if state["state"] == "pending":
        # A plain Refresh header: the page needs no script to keep polling.
        resp.headers["Refresh"] = str(state["interval"])
    return resp


def _hotline_sms(ref: str, data: dict[str, str], answer) -> Any:
    """Both SMS buttons of the hotline console: the SMS read-back endpoint is called for
    a pending request only; ``answer(state, status, body)`` sets the notice shown next."""
    state = _load("hotline", ref)
    auth = _credentials(CONSOLES["hotline"]["client_id"])
    if auth is not None and state["state"] == "pending":
        status_code, body = _call(f"/bc-authorize/{state['auth_req_id']}/sms-code", auth, data)
        session["ciba_demo_notice"] = answer(state, status_code, body)
        _save(ref, state)
    return redirect(url_for("ciba_demo.status", kind="hotline", ref=ref))


def _sms_sent(state: dict[str, Any], status_code: int, body: dict) -> str:
    if status_code == 200 and body.get("sent"):
        state["sms_sent"] = body.get("phone") or "***"
        return _("验证码已发送至 %(phone)s，请用户读出验证码。", phone=state["sms_sent"])
    return _message(body.get("error"), sms=True)


def _sms_checked(state: dict[str, Any], status_code: int, body: dict) -> str:
    if status_code == 200 and body.get("approved"):
        state["last_poll"] = 0.0  # approved: fetch the tokens at once
        return _("验证码正确，已完成认证。")
    if body.get("error") == "invalid_grant":
        left = body.get("tries_left")
        return (_("验证码错误，还可再试 %(n)s 次。", n=left) if left else
                _("验证码已失效，请重新发送。"))
    return _message(body.get("error"), sms=True)


@bp.post("/hotline/r/<ref>/sms")
def sms_send(ref: str):
    return _hotline_sms(ref, {}, _sms_sent)


@bp.post("/hotline/r/<ref>/sms-code")
def sms_check(ref: str):
    return _hotline_sms(ref, {"code": (request.form.get("code") or "").strip()[:16]},
                        _sms_checked)


def register(app) -> None:
    app.register_blueprint(bp)
