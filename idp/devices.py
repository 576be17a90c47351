"""What may be shown about the browser and network a request came from: a fixed
browser and system name (never header text) and a coarse, masked network. Used wherever
a person is shown where something happened — QR approvals, their list of sessions."""

from __future__ import annotations

import ipaddress


def coarse_network(addr: str | None) -> tuple[str, str] | None:
    """(network, shown) for an address: its IPv4 /24 or IPv6 /48, as a CIDR to compare
    and masked to show (``203.0.113.*``, ``2001:db8:1:*``). Enough to tell "this
    building" from "another city", too little to name a household."""
    try:
        ip = ipaddress.ip_address((addr or "").split("%")[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        net = ipaddress.ip_network(f"{ip}/24", strict=False)
        return str(net), ".".join(str(net.network_address).split(".")[:3]) + ".*"
    net = ipaddress.ip_network(f"{ip}/48", strict=False)
    head = net.network_address.exploded.split(":")[:3]
    return str(net), ":".join(h.lstrip("0") or "0" for h in head) + ":*"


# Checked in order: many browsers name others in their User-Agent (Edge says Chrome and
# Safari, Chrome says Safari), so the most specific comes first. Only these fixed names
# are ever shown, never text from the header itself.
_BROWSERS = (("MicroMessenger/", "WeChat"), ("QQBrowser/", "QQ Browser"),
             ("UCBrowser/", "UC Browser"), ("Edg/", "Edge"), ("EdgA/", "Edge"),
             ("EdgiOS/", "Edge"), ("Edge/", "Edge"), ("OPR/", "Opera"),
             ("SamsungBrowser/", "Samsung Internet"), ("Firefox/", "Firefox"),
             ("FxiOS/", "Firefox"), ("CriOS/", "Chrome"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chrome"), ("Trident/", "Internet Explorer"),
             ("MSIE ", "Internet Explorer"), ("Version/", "Safari"))
_SYSTEMS = (("HarmonyOS", "HarmonyOS"), ("OpenHarmony", "HarmonyOS"), ("iPhone", "iOS"),
            ("iPod", "iOS"), ("iPad", "iPadOS"), ("Android", "Android"),
            ("Windows", "Windows"), ("CrOS", "ChromeOS"), ("Macintosh", "macOS"),
            ("Mac OS X", "macOS"), ("Linux", "Linux"))


def device_summary(user_agent: str | None) -> str | None:
    """``Chrome · Windows`` from a User-Agent; None when neither part is recognised."""
    ua = (user_agent or "")[:512]
    browser = next((name for token, name in _BROWSERS if token in ua), None)
    if browser == "Safari" and "Safari/" not in ua:
        browser = None
    system = next((name for token, name in _SYSTEMS if token in ua), None)
    return " · ".join(p for p in (browser, system) if p) or None
