"""What kind of client a registration makes, in one bilingual line, for ``idp client
add`` and ``idp client show`` (a client without a redirect URI cannot sign anyone in
through a browser, and an operator should be told so rather than guess)."""

from __future__ import annotations

_KINDS = (
    ("authorization_code", "浏览器登录 browser sign-in (authorization code + PKCE)"),
    ("urn:ietf:params:oauth:grant-type:device_code",
     "设备登录 device sign-in (RFC 8628: kiosk or TV shows a code or QR)"),
    ("urn:openid:params:grant-type:ciba",
     "后台认证 back-channel sign-in (CIBA: approved on the person's app)"),
    ("urn:ietf:params:oauth:grant-type:jwt-bearer",
     "断言 assertion client (RFC 7523: a trusted kiosk vouches for a card read)"),
    ("client_credentials",
     "机器对机器 machine-to-machine (client_credentials: a service, no person signs in)"),
)


def client_kind(grant_types: list[str], redirect_uris: list[str]) -> str:
    """One line saying what a client can do, from its grant types; without a redirect
    URI it says so, since no browser can then come back to it."""
    kinds = [label for grant, label in _KINDS if grant in grant_types]
    text = "; ".join(kinds) or "无授权类型 no grant type"
    if not redirect_uris:
        text += " — 无回调地址 no redirect URI, so no browser sign-in"
    return text
