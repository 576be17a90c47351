"""LDAP directories (OpenLDAP, Active Directory, ...) read with a paged search.

The search uses the Simple Paged Results control (RFC 2696) through ldap3's generator,
so at most ``page_size`` entries are in memory at a time — a 100k-entry directory
streams like a small one, and servers with a size limit (AD's 1000) are not truncated.

``[fields]`` maps target fields to attribute names (case-insensitive, as in LDAP); the
pseudo-attribute ``dn`` is the entry's DN. Multi-valued attributes give their first
value; binary values that are not UTF-8 are returned as hex. The bind password is never
shown by :meth:`describe`.

If the search ends with any result other than success — e.g. ``sizeLimitExceeded``,
which OpenLDAP also applies to paged searches by anonymous or limited binds — the
iteration raises :class:`~connectors.base.ConnectorError` after the rows it did get, so
a truncated directory is never mistaken for a complete one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connectors.base import ConnectorError, Source, redact_url

SCOPES = ("sub", "level", "base")
DEFAULT_PAGE_SIZE = 500


class LdapSource(Source):
    kind = "ldap"

    def __init__(self, name: str, fields: Mapping[str, str], *, url: str, base_dn: str,
                 bind_dn: str | None = None, password: str | None = None,
                 filter: str = "(objectClass=*)", scope: str = "sub",  # noqa: A002
                 page_size: int = DEFAULT_PAGE_SIZE, start_tls: bool = False,
                 timeout: float = 10, trusted: bool = False,
                 password_format: str | None = None,
                 entity: str = "auto") -> None:
        super().__init__(name, fields, trusted=trusted, password_format=password_format,
                         entity=entity)
        if not url.lower().startswith(("ldap://", "ldaps://", "ldapi://")):
            raise ConnectorError(f"source {name!r}: [ldap] url must start with ldap://, "
                                 f"ldaps:// or ldapi:// (got {redact_url(url)!r})")
        if scope not in SCOPES:
            raise ConnectorError(f"source {name!r}: [ldap] scope must be one of "
                                 f"{', '.join(SCOPES)}")
        if not isinstance(page_size, int) or not 1 <= page_size <= 100_000:
            raise ConnectorError(f"source {name!r}: [ldap] page_size must be 1..100000")
        if not filter.strip().startswith("("):
            raise ConnectorError(f"source {name!r}: [ldap] filter must be an LDAP filter "
                                 f"in parentheses, e.g. (objectClass=person)")
        if password and not bind_dn:
            raise ConnectorError(f"source {name!r}: [ldap] password given without bind_dn")
        self.url = url
        self.base_dn = base_dn
        self.bind_dn = bind_dn
        self._password = password
        self.filter = filter.strip()
        self.scope = scope
        self.page_size = page_size
        self.start_tls = start_tls
        self.timeout = timeout

    def _location(self) -> dict[str, Any]:
        return {"url": redact_url(self.url), "base_dn": self.base_dn,
                "bind_dn": self.bind_dn, "password": "***" if self._password else None,
                "filter": self.filter, "scope": self.scope, "page_size": self.page_size,
                "start_tls": self.start_tls}

    def _connect(self) -> Any:
        import ldap3
        from ldap3.core.exceptions import LDAPException

        bind = ldap3.AUTO_BIND_TLS_BEFORE_BIND if self.start_tls else ldap3.AUTO_BIND_NO_TLS
        try:
            server = ldap3.Server(self.url, get_info=ldap3.NONE,
                                  connect_timeout=self.timeout)
            return ldap3.Connection(server, user=self.bind_dn, password=self._password,
                                    auto_bind=bind, read_only=True,
                                    receive_timeout=self.timeout, raise_exceptions=False)
        except LDAPException as exc:
            raise ConnectorError(f"source {self.name!r}: cannot connect/bind to "
                                 f"{redact_url(self.url)} as {self.bind_dn or 'anonymous'}: "
                                 f"{exc}") from None

    def _records(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        import ldap3
        from ldap3.core.exceptions import LDAPException

        attributes = sorted({a for a in self.fields.values() if a.lower() != "dn"})
        scope = {"sub": ldap3.SUBTREE, "level": ldap3.LEVEL, "base": ldap3.BASE}[self.scope]
        conn = self._connect()
        try:
            entries = conn.extend.standard.paged_search(
                search_base=self.base_dn, search_filter=self.filter, search_scope=scope,
                attributes=attributes or ldap3.NO_ATTRIBUTES, paged_size=self.page_size,
                generator=True)
            for entry in entries:
                if entry.get("type") != "searchResEntry":
                    continue  # referrals and the like
                record = {k.lower(): v for k, v in entry.get("raw_attributes", {}).items()}
                record["dn"] = entry["dn"]
                yield entry["dn"], _Caseless(record)
            result = conn.result or {}
            if result.get("result", 0) != 0:  # an incomplete read is never silent
                hint = ""
                if result.get("description") == "sizeLimitExceeded":
                    hint = (" (the server's size limit for this bind DN stopped the read; "
                            "bind as an account whose limits allow the whole search)")
                raise ConnectorError(f"source {self.name!r}: search under "
                                     f"{self.base_dn!r} failed: {result.get('description')} "
                                     f"{result.get('message') or ''}".rstrip() + hint)
        except LDAPException as exc:
            raise ConnectorError(f"source {self.name!r}: search under {self.base_dn!r} "
                                 f"failed: {exc}") from None
        finally:
            conn.unbind()


class _Caseless(dict):
    """Look attribute names up case-insensitively (keys are stored lower-case)."""

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(key.lower() if isinstance(key, str) else key, default)
