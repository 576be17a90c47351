"""Redis clients for the URL forms operators use.

``redis://`` and ``rediss://`` (TLS) reach one server; ``redis+sentinel://h:p,h:p/SERVICE``
asks the Sentinels for the current master of SERVICE and asks again whenever the master
stops answering or turns into a replica (redis-py's ``SentinelConnectionPool``), so a
failover costs the commands in flight, not the sessions; ``redis+cluster://h:p,h:p`` is a
Redis Cluster, reached through any of the nodes named (redis-py's ``RedisCluster`` follows
MOVED/ASK redirects and slot migrations). ``rediss+sentinel`` and ``rediss+cluster`` use
TLS to the data nodes. A user name and password in the URL authenticate to the data nodes;
``?sentinel_password=`` to the Sentinels themselves.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster",
           "rediss+cluster")
# Short enough that a dead server answers the request with a 503 within seconds instead
# of tying up a worker thread; long enough for a busy server on another machine.
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 3.0


def _retry() -> Retry:
    # Connection errors and timeouts are retried a few times with a short backoff: that
    # is how a Sentinel-managed client gets to the promoted master. Every store command is
    # safe to send twice: SET/PEXPIRE are idempotent, and the rest err on the closed side
    # when a first attempt did reach the server (SET NX answers "already there" = a
    # replay, GETDEL answers "gone" = code already used, INCR counts one more).
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3)


def _nodes(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts = netloc.rpartition("@")[2]
    out = []
    for part in hosts.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("["):  # [v6]:port
            host, _, rest = part[1:].partition("]")
            port = rest.lstrip(":") or str(default_port)
        else:
            host, _, port = part.partition(":")
            port = port or str(default_port)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r} is not host:port")
        out.append((host, int(port)))
    if not out:
        raise ValueError("no host:port given")
    return out


def _auth(netloc: str) -> dict:
    userinfo = netloc.rpartition("@")[0]
    if not userinfo:
        return {}
    user, _, password = userinfo.partition(":")
    out = {}
    if user:
        out["username"] = unquote(user)
    if password:
        out["password"] = unquote(password)
    return out


def describe(url: str) -> str:
    """The URL with any password replaced, for logs and ``/readyz``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return url.replace(parts.netloc, "***@" + parts.netloc.rpartition("@")[2], 1)


def check(url: str) -> str | None:
    """Why ``url`` cannot be a Redis URL, or None (for ``settings.validate``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in SCHEMES:
        return f"must start with one of {', '.join(s + '://' for s in SCHEMES)}"
    if parts.scheme in ("redis", "rediss", "unix"):
        try:
            redis.connection.parse_url(url)
        except ValueError as exc:
            return str(exc)
        return None
    try:
        _nodes(parts.netloc, 26379 if parts.scheme.endswith("sentinel") else 6379)
    except ValueError as exc:
        return f"lists a node that {exc}"
    if parts.scheme.endswith("sentinel") and not parts.path.strip("/").split("/")[0]:
        return "must name the Sentinel service (redis+sentinel://h:26379,h:26380/SERVICE)"
    return None


def connect(url: str):
    """A redis-py client for ``url`` (see the module docstring)."""
    parts = urlsplit(url)
    scheme = parts.scheme
    common = {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": CONNECT_TIMEOUT,
              "retry": _retry()}
    if scheme in ("redis", "rediss", "unix"):
        return redis.Redis.from_url(url, health_check_interval=30, **common)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls = {"ssl": True} if scheme.startswith("rediss") else {}
    auth = _auth(parts.netloc)
    if scheme.endswith("+sentinel"):
        from redis.sentinel import Sentinel

        service, _, db = parts.path.strip("/").partition("/")
        sentinel_kwargs = {"socket_timeout": SOCKET_TIMEOUT,
                           "socket_connect_timeout": CONNECT_TIMEOUT}
        if query.get("sentinel_password"):
            sentinel_kwargs["password"] = query["sentinel_password"]
        sentinel = Sentinel(_nodes(parts.netloc, 26379), sentinel_kwargs=sentinel_kwargs)
        return sentinel.master_for(service, db=int(db or 0), health_check_interval=30,
                                   **auth, **tls, **common)
    from redis.cluster import ClusterNode, RedisCluster

    nodes = [ClusterNode(h, p) for h, p in _nodes(parts.netloc, 6379)]
    return RedisCluster(startup_nodes=nodes, socket_timeout=SOCKET_TIMEOUT,
                        socket_connect_timeout=CONNECT_TIMEOUT, retry=_retry(),
                        **auth, **tls)
