"""Flask extensions, created unbound so every module can import them."""

from typing import Any

from flask_babel import Babel
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
babel = Babel()
csrf = CSRFProtect()


def engine_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """SQLAlchemy engine options for ``DATABASE_URL``.

    PostgreSQL: ``pool_pre_ping`` (``DB_POOL_PRE_PING``) tests each connection as it
    leaves the pool, so the connections a restart or failover broke are replaced
    instead of failing the next requests; a disconnect seen anyway invalidates the
    whole pool at once. Nothing retries a statement that failed: a write may have been
    committed before the connection dropped, and only the caller may know whether it
    is safe to repeat; reads fail over by themselves through the pre-ping. A
    ``DATABASE_URL`` naming several hosts (``?host=a:5432&host=b:5432``, or
    ``?host=a,b&port=5432,5432``)
    with ``target_session_attrs=read-write`` is passed to libpq, which connects to
    whichever host is the primary now — after a standby is promoted, the new one.
    """
    url = cfg["DATABASE_URL"]
    if url.startswith("sqlite"):
        # Several threads (and the store's own connections) share one file.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": bool(cfg.get("DB_POOL_PRE_PING", True)),
            "pool_recycle": 1800, "pool_size": 10, "max_overflow": 20,
            "pool_timeout": float(cfg.get("DB_POOL_TIMEOUT") or 10),
            "connect_args": {"connect_timeout": int(cfg.get("DB_CONNECT_TIMEOUT") or 5)}}
