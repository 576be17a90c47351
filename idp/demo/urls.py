"""Where each demo site listens: the issuer's host, a fixed port after the provider's."""

from __future__ import annotations

from urllib.parse import urlsplit


def demo_site_url(issuer: str, site: dict) -> str:
    parts = urlsplit(issuer)
    port = (parts.port or 80) + site["port_offset"]
    return f"{parts.scheme}://{parts.hostname}:{port}"
