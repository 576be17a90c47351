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


def _coerce(raw: str, like: Any) -> Any:
    """Parse an environment string into the type of the default it replaces."""
    if isinstance(like, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(raw)
    if isinstance(like, float):
        return float(raw)
    if isinstance(like, list):
        return json.loads(raw) if raw.startswith("[") else [p for p in raw.split(",") if p]
    return raw


def load(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = {k: getattr(default, k) for k in dir(default) if k.isupper()}
    for key, value in list(cfg.items()):
        env = os.environ.get("IDP_" + key)
        if env is None and key in _UNPREFIXED:
            env = os.environ.get(key)
        if env is not None and env != "":
            cfg[key] = _coerce(env, value) if value is not None else env
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
