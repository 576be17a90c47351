"""The demo self-service kiosk (``/demo/kiosk``): both kiosk paths on one touch screen.

- 扫码登录: the kiosk starts a device authorization (RFC 8628), shows the user code and
  ``verification_uri_complete`` as a QR code, and polls through its own endpoint here;
- 刷身份证: a simulated chip read (an ID number and a "face matched" box); the demo
  kiosk signs the assertion (RFC 7523) with its key from the instance folder.

The kiosk is a real client (``demo-kiosk``, channel kiosk, ``private_key_jwt``): its
requests go through the same Authlib endpoints as any other, in process. Once tokens
arrive the kiosk browser gets an SSO session of channel ``kiosk`` that ends after
``KIOSK_IDLE_TIMEOUT`` seconds without a touch (the store's time to live; the page's
script signs out at the same moment and says so beforehand).

Anyone at this screen can sign in as anyone by typing an ID number, so it is only on
when ``KIOSK_DEMO`` says so (by default: the embedded demo set-up with channel demos).
"""

from __future__ import annotations

import json
import os
import secrets
import time

import segno
from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from joserfc import jwt
from joserfc.jwk import ECKey

from ..authn import assurance
from ..authn import session as sso
from ..channels import config_flag, demos_enabled
from ..channels.device import display_user_code, normalise_user_code
from ..clients import DEVICE_CODE, JWT_BEARER, find_client, register_client
from ..extensions import db
from ..identity.masking import mask_name
from ..models import Client
from ..oidc.grants import active_person
from ..oidc.tokens import InvalidAccessToken, decode_access_token, issuer, person_id_of
from ..store import store

bp = Blueprint("kiosk_demo", __name__, url_prefix="/demo/kiosk")

CLIENT_ID = "demo-kiosk"
KEY_FILE = "demo_kiosk_key.json"
SCOPE = "openid profile"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AMR_LABELS = {"pwd": _l("密码"), "sms": _l("短信验证码"), "otp": _l("动态口令"),
              "hwk": _l("安全密钥"), "swk": _l("通行密钥"), "face": _l("人脸比对"),
              "idcard": _l("身份证芯片"), "qr": _l("扫码")}


def enabled() -> bool:
    cfg = current_app.config
    value = cfg.get("KIOSK_DEMO")
    return demos_enabled(cfg) if value is None else config_flag(value)


@bp.before_request
def _only_when_enabled():
    if not enabled():
        abort(404)


# ---------------------------------------------------------------- the kiosk's identity

def _key() -> ECKey:
    path = os.path.join(current_app.instance_path, KEY_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            return ECKey.import_key(json.load(fh))
    except (OSError, ValueError):
        pass
    key = ECKey.generate_key("P-256", private=True,
                             parameters={"kid": "demo-kiosk-" + secrets.token_hex(4),
                                         "alg": "ES256", "use": "sig"})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(key.as_dict(private=True), fh)
    return key


def kiosk_client() -> tuple[Client, ECKey]:
    """The demo kiosk's registration, made (or renewed) to match the key on disk."""
    key = _key()
    jwks = {"keys": [key.as_dict(private=False)]}
    # From the database, not find_client's few-second cache: a registration removed a
    # moment ago must be made again.
    row = db.session.scalar(db.select(Client).where(Client.client_id == CLIENT_ID))
    if row is None or row.jwks != jwks:
        if row is not None:
            db.session.execute(db.delete(Client).where(Client.client_id == CLIENT_ID))
            db.session.commit()
        register_client(client_id=CLIENT_ID, name="政务服务自助终端（演示）", secret=None,
                        auth_method="private_key_jwt", redirect_uris=[],
                        grant_types=[JWT_BEARER, DEVICE_CODE], post_logout_redirect_uris=[],
                        backchannel_logout_uri=None, first_party=True, sensitive_scopes=[],
                        channel="kiosk", jwks=jwks, id_token_alg=None)
        row = find_client(CLIENT_ID)
    return row, key


def _sign(key: ECKey, claims: dict) -> str:
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def _client_assertion(key: ECKey) -> dict[str, str]:
    """private_key_jwt (RFC 7523 §2.2) for the kiosk's own calls."""
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": issuer() + "/token", "iat": now,
              "exp": now + 60, "jti": secrets.token_urlsafe(16)}
    return {"client_id": CLIENT_ID, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": _sign(key, claims)}


def _call(path: str, data: dict[str, str]) -> tuple[int, dict]:
    """A request to one of our own protocol endpoints, in process: exactly what the
    kiosk would send over the network, through the same Authlib code."""
    server = current_app.extensions["idp.oauth"]
    with current_app.test_request_context(path, method="POST", data=data,
                                          environ_base={"REMOTE_ADDR": request.remote_addr}):
        resp = (server.create_token_response() if path == "/token"
                else server.create_endpoint_response("device_authorization"))
    return resp.status_code, resp.get_json(silent=True) or {}


# ---------------------------------------------------------------- the screen's state

def _screen_key() -> str:
    if "kiosk_screen" not in session:
        session["kiosk_screen"] = secrets.token_urlsafe(16)
    return "kiosk_screen:" + session["kiosk_screen"]


def _signed_in():
    sess = sso.current()
    if sess is not None and sess.channel == "kiosk" and session.get("kiosk_sid") == sess.sid:
        return sess
    return None


def _start_kiosk_session(access_token: str) -> bool:
    """The kiosk browser's session, resting on the tokens just issued: their ``amr``
    (the chip and face, or how the person signed in on the phone that approved) and
    their ``acr`` as a ceiling — a phone session signed in by a QR scan holds less than
    its amr alone would prove (the app's level caps it)."""
    try:
        claims = decode_access_token(access_token).claims
    except InvalidAccessToken:
        return False
    pid = person_id_of(claims)
    person = active_person(pid) if pid else None
    if person is None:
        return False
    amr = [a for a in claims.get("amr") or [] if isinstance(a, str)]
    sess = sso.start(person, amr, claims.get("acr"), channel="kiosk",
                     idle_timeout=current_app.config["KIOSK_IDLE_TIMEOUT"])
    sso.add_client(sess, CLIENT_ID)
    session["kiosk_sid"] = sess.sid
    store().delete(_screen_key())
    return True


# ---------------------------------------------------------------- pages

@bp.get("/")
def home():
    sess = _signed_in()
    if sess is None:
        return render_template("kiosk_home.html", message=_message(request.args.get("msg")))
    person = sess.person
    return render_template(
        "kiosk_signed_in.html", who=mask_name(person.name), acr=sess.acr,
        account_level=person.assurance_level,
        methods=[str(AMR_LABELS.get(a, a))
                 for a in assurance.public_amr(sess.amr)],
        idle=current_app.config["KIOSK_IDLE_TIMEOUT"])


@bp.route("/card", methods=["GET", "POST"])
def card():
    if request.method == "GET":
        return render_template("kiosk_card.html", error=None)
    _client, key = kiosk_client()
    matched = request.form.get("face_match") == "yes"
    now = int(time.time())
    assertion = _sign(key, {
        "iss": CLIENT_ID, "sub": request.form.get("id_number", "")[:40],
        "aud": issuer() + "/token", "iat": now, "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "check": {"chip": True, "face_match": matched, "score": 0.93 if matched else 0.31}})
    status, body = _call("/token", {"grant_type": JWT_BEARER, "assertion": assertion,
                                    "scope": SCOPE})
    if status == 200 and _start_kiosk_session(body["access_token"]):
        return redirect(url_for(".home"))
    desc = body.get("error_description", "")
    if "face" in desc:
        error = _("人脸比对未通过，请正对摄像头重试，或到人工窗口办理。")
    elif "valid ID number" in desc:
        error = _("证件号码无效，请重新放置身份证。")
    elif "No active account" in desc:
        error = _("未找到该证件对应的账号，请先注册或到人工窗口办理。")
    else:
        error = _("暂时无法完成身份核验，请稍后再试。")
    return render_template("kiosk_card.html", error=error), 400


@bp.post("/device")
def device_start():
    _client, key = kiosk_client()
    status, body = _call("/device_authorization", {**_client_assertion(key), "scope": SCOPE})
    if status != 200:
        return render_template("kiosk_home.html",
                               message=_("暂时无法生成登录二维码，请稍后再试。")), 503
    store().set(_screen_key(), {"device_code": body["device_code"]}, body["expires_in"])
    qr = segno.make(body["verification_uri_complete"], error="m").svg_inline(
        scale=8, border=2, dark="#1f2328", omitsize=True)  # viewBox only: CSS sizes it
    return render_template(
        "kiosk_device.html", user_code=display_user_code(normalise_user_code(body["user_code"])),
        verification_uri=body["verification_uri"], expires_in=body["expires_in"],
        interval=body["interval"], qr_svg=qr)


@bp.post("/device/poll")
def device_poll():
    """The screen's script asks here; the kiosk asks the token endpoint (RFC 8628 §3.4)."""
    state = store().get(_screen_key())
    if state is None:
        return jsonify(state="expired")
    _client, key = kiosk_client()
    status, body = _call("/token", {**_client_assertion(key), "grant_type": DEVICE_CODE,
                                    "device_code": state["device_code"]})
    if status == 200:
        ok = _start_kiosk_session(body["access_token"])
        return jsonify(state="done" if ok else "error")
    error = body.get("error")
    if error in ("authorization_pending", "slow_down"):
        return jsonify(state="pending")
    store().delete(_screen_key())
    return jsonify(state={"access_denied": "denied", "expired_token": "expired"}.get(
        error, "error"))


@bp.post("/ping")
def ping():
    """A touch on the screen: keeps the kiosk session alive (sso.current touches it)."""
    sess = _signed_in()
    return jsonify(active=sess is not None)


@bp.post("/logout")
def logout():
    from ..oidc.views import end_session_everywhere

    sess = _signed_in()
    if sess is not None:
        end_session_everywhere(sess)
    session.pop("kiosk_sid", None)
    return redirect(url_for(".home", msg="idle" if request.form.get("reason") == "idle" else "bye"))


def _message(code: str | None) -> str | None:
    # A code, not text: a link must not make the kiosk say whatever it likes.
    if code == "idle":
        return _("您已超时未操作，已自动退出。")
    if code == "bye":
        return _("您已安全退出。")
    return None


def register(app) -> None:
    app.register_blueprint(bp)
