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
