"""Fetching an address a client gave us (``jwks_uri``), without becoming a proxy into
the internal network (server-side request forgery).

The host name is resolved once, every address it resolves to must be public (unless
private ones are allowed), and the connection goes to that checked address — not to a
second resolution, which a hostile DNS server could answer differently (DNS
rebinding). TLS still verifies the certificate against the host name. No redirects
are followed (a redirect could point anywhere); the body is read up to a size cap and
within one overall deadline.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urlsplit

import urllib3


class FetchError(Exception):
    pass


def _public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """One checked address of ``host``; FetchError when it is not allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchError(f"cannot resolve {host}") from None
    addrs = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addrs:
        raise FetchError(f"cannot resolve {host}")
    if not allow_private and not all(_public(a) for a in addrs):
        # All, not any: a name resolving to a public and a private address would let
        # the connection's choice decide.
        raise FetchError(f"{host} resolves to a loopback, private or reserved address")
    return str(addrs[0])


def check_url(uri: str, *, allow_private: bool) -> None:
    """The checks that need no network: https (http only where private is allowed)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise FetchError("not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FetchError("must be an https URL")
    if parts.scheme == "http" and not allow_private:
        raise FetchError("must be an https URL")
    if parts.username is not None or parts.fragment:
        raise FetchError("must not have credentials or a fragment")
    if not allow_private:
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            return
        if not _public(literal):
            raise FetchError("points at a loopback, private or reserved address")


def fetch(uri: str, *, timeout: float, max_bytes: int, allow_private: bool,
          method: str = "GET", body: bytes | None = None, headers: dict | None = None,
          ok_status: tuple[int, ...] = (200,)) -> bytes:
    """The response body of ``method uri`` (FetchError unless its status is ok_status)."""
    check_url(uri, allow_private=allow_private)
    parts = urlsplit(uri)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    ip = resolve(parts.hostname, port, allow_private=allow_private)
    deadline = time.monotonic() + timeout
    kwargs = {"server_hostname": parts.hostname, "assert_hostname": parts.hostname,
              "cert_reqs": "CERT_REQUIRED"} if https else {}
    pool_cls = urllib3.HTTPSConnectionPool if https else urllib3.HTTPConnectionPool
    pool = pool_cls(ip, port, timeout=urllib3.Timeout(total=timeout), retries=False,
                    maxsize=1, **kwargs)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    try:
        resp = pool.urlopen(method, path, body=body, redirect=False, preload_content=False,
                            headers={"Host": host, "Accept": "application/json",
                                     **(headers or {})})
        try:
            if resp.status not in ok_status:
                raise FetchError(f"answered HTTP {resp.status}")
            body = bytearray()
            for chunk in resp.stream(8192):
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise FetchError(f"is larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FetchError("took too long")
            return bytes(body)
        finally:
            resp.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError(f"could not be fetched ({type(exc).__name__})") from None
    finally:
        pool.close()
