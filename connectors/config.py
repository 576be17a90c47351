"""Build a :class:`~connectors.base.Source` from one TOML file per legacy system.

Example::

    [source]
    name = "old-portal"        # required; becomes LegacyRow.source
    kind = "csv"               # "csv" | "sql" | "ldap"
    trusted = false            # optional; whether the matcher may trust its identities
    entity = "auto"            # optional; "person" | "organisation" | "auto" (per row:
                               # an org/credit code and no ID number → organisation)

    [fields]                   # target field = source column / LDAP attribute
    legacy_id = "USER_ID"      # required
    name = "XM"
    id_number = "SFZH"
    password_hash = "MM"

    [password]
    format = "md5-salt-before" # carried as a string; validated by the importer

    [csv]
    path = "export/users.csv"  # relative to this file's folder
    encoding = "auto"          # "auto" | "utf-8" | "utf-8-sig" | "gbk" | "gb18030"
    delimiter = ","            # "," | "\\t" | ";" | "|" (default: tab for *.tsv)

    # [sql]  url = "postgresql://user:pw@host/db" (or url_env = "VAR"), and
    #        query = "SELECT ..." or table = "schema.users"; batch_size = 1000
    # [ldap] url = "ldap://host:389", bind_dn, password (or password_env), base_dn,
    #        filter, scope = "sub"|"level"|"base", page_size, start_tls, timeout

Every table and key is checked: an unknown key, a missing one or a wrong type raises a
:class:`~connectors.base.ConnectorError` naming the file, table and key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.base import ENTITIES, FIELDS, ConnectorError, Source

KINDS = ("csv", "sql", "ldap")

_SOURCE_KEYS = {"name": str, "kind": str, "trusted": bool, "entity": str}
_PASSWORD_KEYS = {"format": str}
_KIND_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "csv": {"path": str, "encoding": str, "delimiter": str},
    "sql": {"url": str, "url_env": str, "query": str, "table": str, "batch_size": int},
    "ldap": {"url": str, "bind_dn": str, "password": str, "password_env": str,
             "base_dn": str, "filter": str, "scope": str, "page_size": int,
             "start_tls": bool, "timeout": (int, float)},
}
_REQUIRED = {"csv": ("path",), "sql": (), "ldap": ("url", "base_dn")}


def read_table(doc: Mapping[str, Any], key: str, where: str, *,
               required: bool) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        if required:
            raise ConnectorError(f"{where}: missing [{key}] table")
        return {}
    if not isinstance(value, dict):
        raise ConnectorError(f"{where}: {key!r} must be a table ([{key}])")
    return value


def check_keys(table: Mapping[str, Any], allowed: Mapping[str, Any], where: str,
               name: str) -> None:
    """Unknown keys and values of the wrong type raise ConnectorError naming them."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConnectorError(f"{where}: unknown key(s) in [{name}]: {', '.join(unknown)}; "
                             f"allowed: {', '.join(allowed)}")
    for key, value in table.items():
        expected = allowed[key]
        bad_bool = isinstance(value, bool) and expected is not bool and not (
            isinstance(expected, tuple) and bool in expected)
        if not isinstance(value, expected) or bad_bool:
            kinds = expected if isinstance(expected, tuple) else (expected,)
            want = " or ".join({str: "a string", bool: "true/false", int: "an integer",
                                float: "a number"}[k] for k in kinds)
            raise ConnectorError(f"{where}: [{name}] {key} must be {want}, "
                                 f"not {value!r}")


def _from_env(table: dict[str, Any], key: str, where: str, kind: str) -> str | None:
    """``key`` itself, or the environment variable ``key_env`` names."""
    env = table.get(f"{key}_env")
    if env is None:
        return table.get(key)
    if key in table:
        raise ConnectorError(f"{where}: [{kind}] has both {key} and {key}_env; use one")
    value = os.environ.get(env)
    if value is None:
        raise ConnectorError(f"{where}: [{kind}] {key}_env names {env!r}, which is not set")
    return value


def _sqlite_relative(url: str, base: Path) -> str:
    """``sqlite:///rel/path.db`` is resolved against the config file's folder."""
    prefix, sep, db = url.partition(":///")
    if not sep or not prefix.startswith("sqlite") or not db or db.startswith(("/", ":")):
        return url
    db_path, q, query = db.partition("?")
    return f"{prefix}:///{(base / db_path).resolve()}{q}{query}"


def load_source(path: str | os.PathLike[str]) -> Source:
    """Read a connector configuration file and return its (not yet opened) source."""
    path = Path(path)
    return source_from_dict(read_toml(path, "connector config"), base=path.resolve().parent,
                            where=str(path))


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The parsed file; an unreadable or malformed one raises ConnectorError."""
    where = str(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConnectorError(f"cannot read {what} {where}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConnectorError(f"{where} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConnectorError(f"{where} is not UTF-8 (TOML files must be UTF-8)") from None


def source_from_dict(doc: dict[str, Any], *, base: Path, where: str = "config") -> Source:
    """Build a source from an already-parsed configuration (see :func:`load_source`)."""
    unknown = sorted(set(doc) - {"source", "fields", "password", *KINDS})
    if unknown:
        raise ConnectorError(f"{where}: unknown table(s)/key(s) {', '.join(unknown)}; "
                             f"allowed: source, fields, password, {', '.join(KINDS)}")
    src = read_table(doc, "source", where, required=True)
    check_keys(src, _SOURCE_KEYS, where, "source")
    for key in ("name", "kind"):
        if not src.get(key, "").strip():
            raise ConnectorError(f"{where}: [source] {key} is required")
    kind = src["kind"].strip().lower()
    if kind not in KINDS:
        raise ConnectorError(f"{where}: [source] kind {src['kind']!r} is not one of "
                             f"{', '.join(KINDS)}")
    others = [k for k in KINDS if k != kind and k in doc]
    if others:
        raise ConnectorError(f"{where}: kind is {kind!r} but the file has "
                             f"[{'], ['.join(others)}]")

    fields = read_table(doc, "fields", where, required=True)
    check_keys(fields, dict.fromkeys(FIELDS, str), where, "fields")
    password = read_table(doc, "password", where, required=False)
    check_keys(password, _PASSWORD_KEYS, where, "password")
    options = read_table(doc, kind, where, required=True)
    check_keys(options, _KIND_KEYS[kind], where, kind)
    for key in _REQUIRED[kind]:
        if key not in options:
            raise ConnectorError(f"{where}: [{kind}] {key} is required")

    entity = src.get("entity", "auto").strip().lower()
    if entity not in ENTITIES:
        raise ConnectorError(f"{where}: [source] entity {src['entity']!r} is not one of "
                             f"{', '.join(ENTITIES)}")
    common = {"trusted": src.get("trusted", False), "password_format": password.get("format"),
              "entity": entity}
    name = src["name"].strip()
    if kind == "csv":
        from connectors.csv_source import CsvSource

        return CsvSource(name, fields, path=base / options["path"],
                         encoding=options.get("encoding", "auto"),
                         delimiter=options.get("delimiter"), **common)
    if kind == "sql":
        from connectors.sql_source import SqlSource

        url = _from_env(options, "url", where, kind)
        if not url:
            raise ConnectorError(f"{where}: [sql] url (or url_env) is required")
        return SqlSource(name, fields, url=_sqlite_relative(url, base),
                         query=options.get("query"), table=options.get("table"),
                         **({"batch_size": options["batch_size"]}
                            if "batch_size" in options else {}), **common)
    from connectors.ldap_source import LdapSource

    ldap_opts = {k: v for k, v in options.items() if k not in ("password", "password_env")}
    return LdapSource(name, fields, password=_from_env(options, "password", where, kind),
                      **ldap_opts, **common)
