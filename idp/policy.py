"""Rules about channels and grants, decided here and nowhere else.

A sign-in's channel, the channel written into tokens, which grants a client of each
channel may use and whether a grant gets a refresh token are product policy, not
protocol mechanics: keeping them in one module means a change of rule is one change.
"""

from __future__ import annotations

from typing import Any

# Channels whose browser sign-in keeps the client's own channel; any other client
# (kiosk, hall, hotline screens that open a web page) signs in as "web".
_BROWSER_CHANNELS = ("web", "app")


def sign_in_channel(client: Any | None) -> str:
    """The channel a browser sign-in for ``client`` happens on (``web`` without one)."""
    channel = getattr(client, "channel", None)
    return channel if channel in _BROWSER_CHANNELS else "web"


def token_channel(client: Any, session_channel: str | None) -> str:
    """The ``channel`` claim of tokens issued from a browser session: the app or a kiosk
    client says so itself; a website's tokens say where its browser signed in (a website
    used on a kiosk screen is "kiosk")."""
    if client.channel != "web":
        return client.channel
    return session_channel or "web"


def device_channel(client: Any | None) -> str:
    """The channel of a device-grant sign-in: the screen's own channel (a hall's waiting
    room screen is "hall"), never "web" — a website that asks for a device code is
    showing it on some shared screen, which is what a kiosk is."""
    channel = getattr(client, "channel", None)
    return channel if channel not in (None, "web") else "kiosk"


# -- grants ------------------------------------------------------------------------

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 (kiosk screens)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 (trusted kiosks)
CIBA = "urn:openid:params:grant-type:ciba"  # OpenID CIBA Core (halls, hotlines)
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials",
                         DEVICE_CODE, JWT_BEARER, CIBA})
CHANNELS = ("web", "app", "kiosk", "hall", "hotline")

_GRANT_NAMES = {DEVICE_CODE: "device_code", JWT_BEARER: "jwt-bearer", CIBA: "ciba"}

# Which channel may use which grant (DESIGN.md, "Tokens that every channel accepts").
# Every channel may open a web page (authorization_code), be registered for
# refresh_token (whether one is issued is issues_refresh_token's call) and have its
# back end call APIs with no person involved (client_credentials). The rest follow from
# who holds the client: only a trusted kiosk reads ID-card chips (jwt-bearer); only a
# counter clerk or a hotline agent asks a citizen's app to approve (CIBA); a device
# code is shown on a shared screen (a website's too), never inside a phone app or on
# a hotline, which has no screen.
_EVERY_CHANNEL = {"authorization_code", "refresh_token", "client_credentials"}
_CHANNEL_GRANTS = {
    "web": _EVERY_CHANNEL | {DEVICE_CODE},
    "app": _EVERY_CHANNEL,
    "kiosk": _EVERY_CHANNEL | {DEVICE_CODE, JWT_BEARER},
    "hall": _EVERY_CHANNEL | {DEVICE_CODE, CIBA},
    "hotline": _EVERY_CHANNEL | {CIBA},
}


def grant_name(grant_type: str) -> str:
    """A grant type as people write it (``ciba`` rather than its URN)."""
    return _GRANT_NAMES.get(grant_type, grant_type)


def grant_type(name: str) -> str:
    """The grant type an operator means: the URN, or its short name (``ciba``)."""
    return next((urn for urn, short in _GRANT_NAMES.items() if short == name), name)


def channel_allows(channel: str | None, grant_type: str) -> bool:
    """Whether a client of ``channel`` may be registered for, and use, ``grant_type``."""
    return grant_type in _CHANNEL_GRANTS.get(channel or "web", set())


def channels_for(grant_type: str) -> list[str]:
    return [c for c in CHANNELS if channel_allows(c, grant_type)]


def forbidden_grants(channel: str | None, grant_types: list[str]) -> str | None:
    """At registration: a readable reason why a ``channel`` client cannot have these
    grants, or None when it may."""
    if (channel or "web") not in _CHANNEL_GRANTS:
        return f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})"
    bad = [g for g in grant_types if g in GRANT_TYPES and not channel_allows(channel, g)]
    if not bad:
        return None
    return "; ".join(f"grant type {grant_name(g)} is for {' or '.join(channels_for(g))} "
                     f"clients, not {channel}" for g in bad)


def may_use_grant(client: Any, grant_type: str) -> bool:
    """Per request: registered for the grant, and of a channel that may use it (a row
    edited behind the registration's back is still held to the channel rule)."""
    return client.check_grant_type(grant_type) and channel_allows(client.channel, grant_type)


def issues_refresh_token(client: Any, grant_type: str, scope: str | None,
                         channel: str | None = None) -> bool:
    """Whether a token response of ``grant_type`` for ``client`` includes a refresh token;
    ``channel`` is where the sign-in happened, when the grant knows it.

    - Only clients registered for the refresh_token grant get one.
    - Never on a kiosk (the client's channel or the sign-in's): a shared screen the next
      person walks up to must not keep a sign-in beyond the session. The trusted-kiosk
      assertion (jwt-bearer) is a kiosk's by definition.
    - CIBA only with ``offline_access``: a clerk's or agent's access on the citizen's
      behalf ends with the call unless the citizen approved more.
    - The code, refresh (rotation) and device grants otherwise do.
    """
    if not client.check_grant_type("refresh_token"):
        return False
    if grant_type == JWT_BEARER or "kiosk" in (client.channel, channel):
        return False
    if grant_type == CIBA:
        return "offline_access" in (scope or "").split()
    return grant_type in ("authorization_code", "refresh_token", DEVICE_CODE)
