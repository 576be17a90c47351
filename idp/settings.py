"""Configuration: defaults from ``config/default.py``, then the environment, then overrides."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from config import default


class ConfigError(RuntimeError):
    """A configuration that cannot run safely; the message says what to set."""


# Names read from the environment without the IDP_ prefix, because operators and
# platforms (Heroku-style PaaS, docker-compose files) already spell them this way.
_UNPREFIXED = ("DATABASE_URL", "REDIS_URL")


def env_name(key: str) -> str:
    """How an operator spells a setting in the environment."""
    return key if key in _UNPREFIXED else "IDP_" + key


def _coerce(key: str, raw: str, like: Any) -> Any:
    """Parse an environment string into the type of the default it replaces."""
    if isinstance(like, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    try:
        if isinstance(like, int):
            return int(raw)
        if isinstance(like, float):
            return float(raw)
        if isinstance(like, list):
            if raw.startswith("["):
                value = json.loads(raw)
                if not isinstance(value, list):
                    raise ValueError
                return value
            return [p for p in raw.split(",") if p]
    except ValueError:
        kind = {int: "a whole number", float: "a number", list: "a JSON list or "
                "comma-separated values"}[type(like)]
        raise ConfigError(f"{env_name(key)}={_shown(raw)} is not {kind}; set it like the "
                          f"default ({like!r}) or unset it") from None
    return raw


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…'"


def load(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = {k: getattr(default, k) for k in dir(default) if k.isupper()}
    for key, value in list(cfg.items()):
        env = os.environ.get("IDP_" + key)
        if env is None and key in _UNPREFIXED:
            env = os.environ.get(key)
        if env is not None and env != "":
            cfg[key] = _coerce(key, env, value) if value is not None else env
    cfg.update(overrides or {})

    Path(instance_path).mkdir(parents=True, exist_ok=True)
    if not cfg.get("DATABASE_URL"):
        cfg["DATABASE_URL"] = "sqlite:///" + str(Path(instance_path) / "idp.sqlite3")
        cfg["EMBEDDED"] = True
    else:
        cfg.setdefault("EMBEDDED", False)
    cfg["DATABASE_URL"] = _sqlalchemy_url(cfg["DATABASE_URL"])
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = _instance_secret(Path(instance_path) / "secret_key")
    if not cfg.get("KEK"):
        if not cfg["EMBEDDED"]:
            # Workers sharing a database must share one KEK; a key made up per
            # instance would encrypt data the other instances cannot read.
            raise ConfigError("IDP_KEK must be set (64 hex characters) when DATABASE_URL "
                              "points at a shared database; see config/production.example.env")
        cfg["KEK"] = _instance_secret(Path(instance_path) / "kek")
    if isinstance(cfg.get("ISSUER"), str):  # anything else is refused by validate()
        cfg["ISSUER"] = cfg["ISSUER"].rstrip("/")
    return cfg


def _sqlalchemy_url(url: str) -> str:
    # psycopg 3 is the driver we ship; plain postgres:// URLs mean it.
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def _instance_secret(path: Path) -> str:
    """A per-installation secret, made once; several workers must share one via IDP_SECRET_KEY."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


# -- checked at start-up ------------------------------------------------------------------
#
# A setting that cannot work must stop `idp serve` with one line saying which and how to
# fix it, not surface as a 500 at the first request that needs it (or as a traceback).

# Numbers for which 0 means something (none, no wait, no tolerance); every other
# number is a lifetime, a limit or a cost and must be above 0.
_ZERO_ALLOWED = {"TRUSTED_PROXIES", "BACKCHANNEL_LOGOUT_BACKOFF", "TOTP_WINDOW",
                 "LOCKOUT_WAIT_SECONDS", "SMS_PHONE_INTERVAL"}
_FRACTIONS = {"KIOSK_FACE_MIN_SCORE", "FACE_MIN_SCORE"}
# Plug-in settings and the built-in names each accepts (idp.plugins.load's callers).
_PLUGINS = {"SMS_GATEWAY": ("dev", "http"), "REALNAME_VERIFIER": ("dev",),
            "FACE_VERIFIER": ("dev",), "ORG_REGISTRY": ()}
_PLUGIN_OFF = ("", "off", "none", "false")  # as idp.plugins.OFF
# The algorithms idp.crypto.keys can make keys for (a unit test keeps the two equal).
SIGNING_ALGS = ("ES256", "RS256", "SM2SM3")
PASSWORD_POLICIES = ("argon2id", "pbkdf2-sm3")


def validate(cfg: dict[str, Any], *, instance_path: str = ".") -> None:
    """Raise :class:`ConfigError` naming every setting that cannot work, on one line."""
    problems = [*_numbers(cfg), *_urls(cfg), *_choices(cfg), *_files(cfg, instance_path),
                *_plugins(cfg), *_passwords(cfg), *_operations(cfg)]
    if problems:
        raise ConfigError("; ".join(p.replace("\n", " ") for p in problems))


def _high_assurance(cfg: dict[str, Any]):
    """Issue 14's settings that a number check cannot judge (idp.oidc.resources, profile)."""
    from .oidc.resources import parse_entry

    entries = cfg.get("RESOURCE_SERVERS") or []
    if not isinstance(entries, list):
        yield "IDP_RESOURCE_SERVERS must be a list of CLIENT_ID=https://resource/ entries"
        entries = []
    for entry in entries:
        try:
            parse_entry(entry)
        except ValueError:
            yield (f"IDP_RESOURCE_SERVERS entry {_shown(entry)} must be "
                   "CLIENT_ID=https://resource/ (https, no fragment)")
    ttl = cfg.get("FAPI_AUTHORIZATION_CODE_TTL")
    if isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl > 60:
        yield f"IDP_FAPI_AUTHORIZATION_CODE_TTL={ttl!r} must be at most 60 (FAPI 2.0 §5.3.2.1)"


def _numbers(cfg: dict[str, Any]):
    import math

    for key in sorted(k for k in dir(default) if k.isupper()):
        like, value = getattr(default, key), cfg.get(key)
        if isinstance(like, bool) or not isinstance(like, int | float) or value is None:
            continue
        name = env_name(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            yield f"{name}={_shown(value)} must be a number (default {like!r})"
        elif isinstance(like, int) and not isinstance(like, bool) and value != int(value):
            yield f"{name}={value!r} must be a whole number (default {like!r})"
        elif not math.isfinite(value):
            yield f"{name}={value!r} must be a finite number (default {like!r})"
        elif key in _FRACTIONS and not 0 <= value <= 1:
            yield f"{name}={value!r} must be between 0 and 1 (default {like!r})"
        elif value < 0 or (value == 0 and key not in _ZERO_ALLOWED):
            least = "0 or more" if key in _ZERO_ALLOWED else "more than 0"
            yield f"{name}={value!r} must be {least} (default {like!r})"


def _urls(cfg: dict[str, Any]):
    from urllib.parse import urlsplit

    issuer = cfg.get("ISSUER")
    try:
        parts = urlsplit(issuer) if isinstance(issuer, str) else None
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or parts.query or parts.fragment or parts.username is not None:
        yield (f"IDP_ISSUER={_shown(issuer)} must be the provider's http(s) address, with no "
               "query, fragment or user name (e.g. https://id.example.gov.cn)")
    else:
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number in range
        except ValueError:
            yield f"IDP_ISSUER={_shown(issuer)} has an invalid port"
    alias = cfg.get("MTLS_ENDPOINT_BASE")
    if alias:
        try:
            a = urlsplit(alias) if isinstance(alias, str) else None
            if a is not None:
                a.port  # noqa: B018 - raises on a bad port
        except ValueError:
            a = None
        if a is None or a.scheme != "https" or not a.hostname or a.path.strip("/") \
                or a.query or a.fragment or a.username is not None:
            yield (f"IDP_MTLS_ENDPOINT_BASE={_shown(alias)} must be an https address with no "
                   "path, query or fragment (e.g. https://mtls.id.example.gov.cn)")
        elif not cfg.get("TRUSTED_PROXIES"):
            yield ("IDP_MTLS_ENDPOINT_BASE needs IDP_TRUSTED_PROXIES > 0: the certificate "
                   "comes from the TLS terminator")


def _choices(cfg: dict[str, Any]):
    yield from _high_assurance(cfg)
    for key in ("ACCESS_TOKEN_ALG", "DEFAULT_ID_TOKEN_ALG"):
        if cfg.get(key) not in SIGNING_ALGS:
            yield f"{env_name(key)}={_shown(cfg.get(key))} must be one of {', '.join(SIGNING_ALGS)}"
    binary = cfg.get("SAML_XMLSEC_BINARY")
    if not isinstance(binary, str) or not binary.strip():
        yield "IDP_SAML_XMLSEC_BINARY must name the xmlsec1 program (a name on PATH or a path)"
    if cfg.get("PASSWORD_HASH") not in PASSWORD_POLICIES:
        yield (f"IDP_PASSWORD_HASH={_shown(cfg.get('PASSWORD_HASH'))} must be one of "
               f"{', '.join(PASSWORD_POLICIES)}")
    languages = cfg.get("LANGUAGES")
    if not isinstance(languages, list) or not languages \
            or not all(isinstance(x, str) and x for x in languages):
        yield "IDP_LANGUAGES must list at least one language (e.g. zh_CN,en)"
    if cfg.get("KEK"):
        from .crypto.fieldcrypt import parse_kek

        try:
            parse_kek(str(cfg["KEK"]))
        except ValueError:  # the key itself is never echoed
            yield "IDP_KEK must be 32 bytes: 64 hex characters (e.g. `openssl rand -hex 32`)"
    if cfg.get("KEK_PREVIOUS"):
        from .crypto.fieldcrypt import parse_kek

        try:
            same = parse_kek(str(cfg["KEK_PREVIOUS"])) == parse_kek(str(cfg.get("KEK") or ""))
        except ValueError:
            yield "IDP_KEK_PREVIOUS must be 32 bytes: 64 hex characters, like IDP_KEK"
        else:
            if same:
                yield "IDP_KEK_PREVIOUS is the same key as IDP_KEK: set the new key as IDP_KEK"
    zone = cfg.get("TIME_ZONE")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(str(zone))
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        yield f"IDP_TIME_ZONE={_shown(zone)} must be an IANA time zone (e.g. Asia/Shanghai)"
    id_field = cfg.get("CERT_ID_FIELD")
    if isinstance(id_field, str) and "(" in id_field:
        import re

        try:
            re.compile(id_field)
        except re.error as exc:
            yield f"IDP_CERT_ID_FIELD is not a valid regular expression: {exc}"


def _readable(path: Any) -> bool:
    return isinstance(path, str | os.PathLike) and os.path.isfile(path) \
        and os.access(path, os.R_OK)


def _files(cfg: dict[str, Any], instance_path: str):
    cert_login = cfg.get("CERT_LOGIN")
    if isinstance(cert_login, str):
        cert_login = cert_login.strip().lower() in ("1", "true", "yes", "on")
    if cert_login and not cfg.get("CERT_CA_FILE"):
        yield ("IDP_CERT_CA_FILE must name the PEM bundle of accepted CAs when "
               "IDP_CERT_LOGIN is on")
    for key, what in (("CERT_CA_FILE", "CA bundle"), ("CERT_CRL_FILE", "CRL file"),
                      ("CAS_PROXY_CA_FILE", "CA bundle")):
        path = cfg.get(key)
        if path and not _readable(path):
            yield f"{env_name(key)}: the {what} {str(path)!r} does not exist or cannot be read"
    upstreams = cfg.get("UPSTREAM_IDPS") or []
    for entry in [upstreams] if isinstance(upstreams, str) else upstreams:
        if isinstance(entry, str) and not _readable(Path(instance_path) / entry):
            yield (f"IDP_UPSTREAM_IDPS: the upstream file {entry!r} does not exist or cannot "
                   f"be read (relative paths are against {instance_path})")


def _plugins(cfg: dict[str, Any]):
    import importlib

    for key, builtins in _PLUGINS.items():
        value = cfg.get(key)
        if value is None or str(value).strip().lower() in _PLUGIN_OFF \
                or str(value).strip() in builtins:
            continue
        name, text = env_name(key), str(value).strip()
        module, _, attr = text.partition(":")
        usage = " or ".join([*(repr(b) for b in builtins), "'package.module:Class'"])
        if not module or not attr:
            yield f"{name}={_shown(text)} must be {usage}"
            continue
        try:
            found = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            yield f"{name}={_shown(text)}: module {module!r} cannot be imported ({exc})"
            continue
        except AttributeError:
            yield f"{name}={_shown(text)}: module {module!r} has no {attr!r}"
            continue
        except Exception as exc:  # noqa: BLE001 - whatever the plug-in raised on import
            yield f"{name}={_shown(text)}: importing {module!r} failed ({type(exc).__name__})"
            continue
        if not callable(found):
            yield f"{name}={_shown(text)}: {attr!r} is not a class"
    if str(cfg.get("SMS_GATEWAY") or "").strip() == "http" and not cfg.get("SMS_HTTP_URL"):
        yield "IDP_SMS_HTTP_URL must be set when IDP_SMS_GATEWAY is 'http'"


def _passwords(cfg: dict[str, Any]):
    # New-password rules and the registration settings (idp.authn.password_policy).
    least, kinds = cfg.get("PASSWORD_MIN_LENGTH"), cfg.get("PASSWORD_MIN_CLASSES")
    if isinstance(least, int) and not isinstance(least, bool) and not 8 <= least <= 128:
        yield f"IDP_PASSWORD_MIN_LENGTH={least!r} must be between 8 and 128"
    if isinstance(kinds, int) and not isinstance(kinds, bool) and not 1 <= kinds <= 4:
        yield f"IDP_PASSWORD_MIN_CLASSES={kinds!r} must be between 1 and 4"
    path = cfg.get("PASSWORD_DENYLIST_FILE")
    if path and not _readable(path):
        yield (f"IDP_PASSWORD_DENYLIST_FILE: the file {str(path)!r} does not exist or cannot "
               "be read")
    if not isinstance(cfg.get("REGISTRATION_OPEN"), bool):
        yield f"IDP_REGISTRATION_OPEN={_shown(cfg.get('REGISTRATION_OPEN'))} must be true or false"


def _operations(cfg: dict[str, Any]):
    """Redis URL, the metrics allow-list and token (idp.store.connect, idp.metrics)."""
    url = cfg.get("REDIS_URL")
    if url:
        from .store.connect import check, describe

        problem = check(str(url))
        if problem:
            yield f"REDIS_URL={_shown(describe(str(url)))} {problem}"
    allow = cfg.get("METRICS_ALLOW")
    if isinstance(allow, str):
        allow = [p for p in allow.split(",") if p.strip()]
    if not isinstance(allow, list):
        yield "IDP_METRICS_ALLOW must list addresses or networks (e.g. 127.0.0.1,10.0.0.0/8)"
    else:
        from .metrics import networks

        try:
            networks(allow)
        except ValueError as exc:
            yield f"IDP_METRICS_ALLOW: {exc}"
    token = cfg.get("METRICS_TOKEN")
    if token is not None and (not isinstance(token, str) or len(token.strip()) < 16):
        yield "IDP_METRICS_TOKEN must be at least 16 characters (e.g. `openssl rand -hex 24`)"
