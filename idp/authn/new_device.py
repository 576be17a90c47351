"""New-device notice: an SMS to the account's phone when it signs in from a browser it has
never used, on a network it has never used (``NEW_DEVICE_NOTICE``; False turns it off).

Each browser carries a random, long-lived device cookie (``idp_device``; nothing in it
but the random value). Per account the shared store remembers, for
``NEW_DEVICE_MEMORY_DAYS``, keyed hashes of the device values and of the coarse networks
(:func:`idp.devices.coarse_network`, a /24 or /48) it signed in from — no raw address,
no cookie value. A sign-in is "new" when neither its browser nor its network is
remembered: a known laptop on a hotel network, or a cleared browser at home, stays
quiet; a stolen password used from elsewhere does not. An account's very first sign-in
only starts the memory (there is nothing to compare with).

Called by :func:`idp.authn.session.start`; sending never fails the sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from flask import current_app, g, request

from .. import audit
from ..devices import coarse_network
from ..store import store
from . import sms_notice

log = logging.getLogger(__name__)

COOKIE = "idp_device"
# Chinese only, as every SMS text (carriers deliver templates registered in advance).
sms_notice.TEXTS.setdefault(
    "new_device", "【统一身份认证平台】您的账号刚刚在一台新的设备和网络上登录。如非本人操作，"
                  "请立即修改密码，并在“我的账号—登录设备”中退出该设备。")
COOKIE_DAYS = 400  # browsers cap cookie lifetimes at about this (RFC 6265bis)


def _mac(*parts: str) -> str:
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, "\x1f".join(("new-device", *parts)).encode(),
                    hashlib.sha256).hexdigest()[:32]


def _device_value() -> str:
    value = request.cookies.get(COOKIE) or ""
    if 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
        return value
    value = g.get("idp_set_device_cookie") or secrets.token_urlsafe(24)
    g.idp_set_device_cookie = value
    return value


def _ttl() -> float:
    return float(current_app.config["NEW_DEVICE_MEMORY_DAYS"]) * 86400


def seen(person_id: str) -> str | None:
    """Remember this browser and network for the account; the reason to notify ("new"),
    or None when either was known (or the account had no memory yet)."""
    browser = f"nd:{person_id}:b:{_mac(person_id, _device_value())}"
    network = coarse_network(request.remote_addr)
    net_key = f"nd:{person_id}:n:{_mac(person_id, network[0])}" if network else None
    any_key = f"nd:{person_id}:any"
    first = store().get(any_key) is None
    known = store().get(browser) is not None or (
        net_key is not None and store().get(net_key) is not None)
    for key in (browser, net_key, any_key):
        if key:
            store().set(key, 1, _ttl())
    return None if first or known else "new"


def after_sign_in(person, sess) -> None:
    """Notify the account's phone of a sign-in from a new browser and network."""
    if not current_app.config.get("NEW_DEVICE_NOTICE"):
        return
    try:
        if seen(person.id) is None:
            return
        sent = sms_notice.send_notice(person.phone, "new_device")
    except Exception:  # noqa: BLE001 - a notice never fails the sign-in it reports
        log.exception("new-device notice failed")
        return
    audit.record("login.new_device", actor=person.id, subject=person.id,
                 details={"sid": sess.sid, "device": sess.device, "network": sess.network,
                          "notified": sent})


def apply_cookie(response):
    """after_request hook: give a browser its device cookie the first time it signs in."""
    value = g.pop("idp_set_device_cookie", None)
    if value:
        response.set_cookie(COOKIE, value, max_age=COOKIE_DAYS * 86400, httponly=True,
                            samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"],
                            path="/")
    return response
