"""``/healthz`` (this process answers) and ``/readyz`` (it can serve sign-ins).

A load balancer restarts a process whose ``/healthz`` fails and sends no traffic to
one whose ``/readyz`` fails. Readiness checks, each in its own few lines: the database
answers, its schema is at the migrations' head (an instance started before ``idp init``
ran, or an old instance after an upgrade, must not take traffic), the signing keys load
(and unwrap with this KEK), and the short-lived store answers (Redis when configured).
A failure names the part and the kind of error; never a URL with a password, never a
stack trace. Neither endpoint needs a session, a cookie or CSRF; both are cheap.
"""

from __future__ import annotations

import functools
import logging
import os

from flask import Blueprint, current_app, jsonify

log = logging.getLogger("idp.health")
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok"), 200, {"Cache-Control": "no-store"}


def _database() -> str | None:
    from sqlalchemy import text

    from .extensions import db

    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return None


@functools.lru_cache(maxsize=1)
def _heads(directory: str) -> frozenset[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", directory)
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


def _migrations() -> str | None:
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    from .extensions import db

    try:
        with db.engine.connect() as conn:
            current = {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
    except ProgrammingError:
        return "no alembic_version table: run `idp init`"
    except Exception as exc:  # sqlite: OperationalError "no such table"
        if "alembic_version" in str(exc):
            return "no alembic_version table: run `idp init`"
        raise
    heads = _heads(os.path.abspath(current_app.extensions["migrate"].directory))
    if current != heads:
        return f"database at {', '.join(sorted(current)) or 'nothing'}, code expects " \
               f"{', '.join(sorted(heads))}: run `idp init`"
    return None


def _signing_keys() -> str | None:
    keys = current_app.extensions["idp.keys"]
    cfg = current_app.config
    for alg in sorted({cfg["DEFAULT_ID_TOKEN_ALG"], cfg["ACCESS_TOKEN_ALG"]}):
        try:
            keys.signing_key(alg)
        except LookupError:
            return f"no active {alg} signing key: run `idp keys rotate --alg {alg}`"
    return None


def _store() -> str | None:
    from .store import store

    store().ping()
    return None


CHECKS = {"database": _database, "migrations": _migrations, "signing_keys": _signing_keys}


def _run(check) -> str | None:
    from .crypto.envelope import UnknownKek
    from .extensions import db

    try:
        return check()
    except UnknownKek as exc:  # this worker's IDP_KEK is out of date: say what to do
        return "the data keys are under another KEK: restart with the new IDP_KEK " \
               f"(data keys under {exc.wrapped_under}, this process has {exc.current_id})"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        cause = getattr(exc, "orig", None) or exc.__cause__ or exc
        return f"unreachable ({type(cause).__name__})"
    finally:
        try:
            db.session.rollback()  # a failed check leaves nothing half-open
        except Exception:  # noqa: BLE001, S110 - the connection is already gone
            pass


@bp.get("/readyz")
def readyz():
    from .store import store

    checks = dict(CHECKS)
    checks["redis" if store().backend == "redis" else "store"] = _store
    results: dict[str, str] = {}
    for name, check in checks.items():
        if name in ("migrations", "signing_keys") and results.get("database") != "ok":
            results[name] = "skipped (database unreachable)"
            continue
        results[name] = _run(check) or "ok"
    failing = [name for name, result in results.items() if result != "ok"]
    if failing:
        log.warning("not ready: %s", "; ".join(f"{n}: {results[n]}" for n in failing))
        return jsonify(status="unavailable", failing=failing, checks=results), 503, \
            {"Cache-Control": "no-store", "Retry-After": "5"}
    return jsonify(status="ok", checks=results), 200, {"Cache-Control": "no-store"}


def init_app(app) -> None:
    app.register_blueprint(bp)
