"""CAS service URL patterns: what a CAS client registers, and which ``service`` values
they admit.

A pattern is an absolute URL, matched exactly, or ending in ``*`` to admit every URL
that starts with the part before it (``https://portal.example.gov.cn/app/*``). The
wildcard may only stand in the path or query, never in the scheme or host, so a
pattern can never admit another site (``https://a.gov.cn*`` would admit
``https://a.gov.cn.evil.example``). A ``service`` is also refused outright when it could
be read two ways: user info (``https://good@evil``), backslashes, control characters or
white space, which browsers and URL parsers disagree on."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = ("localhost", "127.0.0.1", "::1")
MAX_SERVICE_LENGTH = 2048


class PatternError(ValueError):
    pass


def _plain(url: str) -> bool:
    return (isinstance(url, str) and 0 < len(url) <= MAX_SERVICE_LENGTH
            and url.isprintable() and not any(c.isspace() or c == "\\" for c in url))


def _origin_ok(parts) -> bool:
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in LOOPBACK


def check_pattern(pattern: str) -> str:
    """The pattern if it is acceptable, else :class:`PatternError` with the reason."""
    if not _plain(pattern):
        raise PatternError(f"service URL must be a plain absolute URL: {pattern!r}")
    prefix = pattern[:-1] if pattern.endswith("*") else pattern
    if "*" in prefix:
        raise PatternError(f"'*' is allowed only at the end of a service URL: {pattern}")
    try:
        parts = urlsplit(prefix)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise PatternError(f"malformed service URL: {pattern}") from None
    if not _origin_ok(parts):
        raise PatternError(f"service URL must be https (or http on loopback), without user "
                           f"info: {pattern}")
    if parts.fragment:
        raise PatternError(f"service URL must not have a fragment: {pattern}")
    if pattern.endswith("*") and not parts.path.startswith("/"):
        # the host must be closed by a '/' before any wildcard
        raise PatternError(f"a wildcard needs the path to start first, e.g. "
                           f"{prefix.rstrip('/')}/*")
    return pattern


def well_formed(service: str) -> bool:
    """Whether ``service`` is a URL we would ever send a browser to."""
    if not _plain(service):
        return False
    try:
        parts = urlsplit(service)
        parts.port  # noqa: B018
    except ValueError:
        return False
    return _origin_ok(parts)


def matches(pattern: str, service: str) -> bool:
    if not well_formed(service):
        return False
    if pattern.endswith("*"):
        return service.startswith(pattern[:-1])
    return service == pattern
