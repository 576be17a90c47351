"""Fail closed, and say so: what the provider answers while Redis or PostgreSQL is down.

Nothing that needs the short-lived store or the database carries on without it — an
unreadable revocation list, lockout counter, authorization code or SSO session is never
taken for an empty one. Instead every request that needs the missing part ends here:

* pages (sign-in, consent, logout, account pages) answer **503** with the
  "暂时无法登录" page and ``Retry-After``;
* the OAuth/OIDC APIs (``/token``, ``/userinfo``, ``/introspect``, ``/revoke``, …) and
  the JSON APIs answer **503** ``{"error": "temporarily_unavailable"}`` (RFC 6749 §5.2's
  code, with the status that says "come back") and ``Retry-After``.

Discovery and the JWKS need neither Redis nor a live database connection once the keys
are loaded, so relying parties keep verifying tokens they already hold. The operator
sees one warning line per failed request naming the part (never a stack trace, never
personal data), the ``idp_store_errors_total`` counter and ``/readyz``'s answer.

A worker whose ``IDP_KEK`` does not open the stored data keys (still configured with the
old key after ``idp kek rotate``) is refused the same way — 503, never a 500 — with an
error line saying how to fix it (restart with the new ``IDP_KEK``), counted under
``part="kek"`` and named by ``/readyz``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, jsonify, render_template
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .store.base import StoreUnavailable

log = logging.getLogger("idp.availability")
RETRY_AFTER = 5  # seconds: a restart or a failover is over in about this long
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)


def part_of(err: Exception) -> str:
    """Which part is missing: 'redis' or 'database'."""
    if isinstance(err, StoreUnavailable):
        return "redis" if str(err).startswith("redis") else "database"
    return "database"


def _redis_errors() -> tuple[type[Exception], ...]:
    try:
        from .store.redis import OUTAGE
    except ImportError:  # pragma: no cover - redis is a dependency
        return ()
    return OUTAGE


def install(app: Flask, wants_json: Callable[[], bool]) -> None:
    from .crypto.envelope import UnknownKek

    def answer(description: str):
        _rollback()
        headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
        if wants_json():
            return jsonify(error="temporarily_unavailable",
                           error_description=description), 503, headers
        return render_template("unavailable.html", retry_after=RETRY_AFTER), 503, headers

    def unavailable(err: Exception):
        from . import metrics

        part = part_of(err) if not isinstance(err, _redis_errors()) else "redis"
        cause = getattr(err, "orig", None) or err.__cause__ or err
        log.warning("%s unavailable (%s); answered 503", part, type(cause).__name__)
        metrics.store_error(part)
        return answer("The service is temporarily unavailable; try again shortly.")

    def stale_kek(err: UnknownKek):
        # A worker left with the old IDP_KEK after `idp kek rotate` (or never given the
        # new one) cannot open the data keys: nothing it could answer would be right, and
        # it is the operator's to fix, so it says so in the log, refuses with 503 (as when
        # the database is down: another worker may serve the retry), and tries the keys
        # again on the next request — a restart with the right key ends it.
        from . import metrics

        log.error("key-encryption key out of date: %s; answered 503", err.fix())
        metrics.store_error("kek")
        return answer("The service is temporarily unavailable (this server is being "
                      "reconfigured); try again shortly.")

    for kind in (StoreUnavailable, *DATABASE_DOWN, *_redis_errors()):
        app.register_error_handler(kind, unavailable)
    app.register_error_handler(UnknownKek, stale_kek)
    # Runs before Flask-SQLAlchemy's own teardown (registered earlier, so called later).
    app.teardown_appcontext(_close_session)


def _close_session(_exc) -> None:
    """End the request's database session even when its connection died meanwhile.

    Closing rolls back on the server; if PostgreSQL went away after the answer was made
    (a restart, a failover), that rollback raises while the app context is torn down —
    after the error handlers — and the client would get gunicorn's bare 500 instead of
    the answer already made. The connection is then only dropped (invalidated)."""
    from .extensions import db

    try:
        db.session.remove()
    except DATABASE_DOWN as exc:
        log.warning("database connection lost while closing a session (%s); dropped",
                    type(getattr(exc, "orig", None) or exc).__name__)
        try:
            db.session.invalidate()
        except Exception:  # noqa: BLE001, S110 - nothing more can be done with it
            pass
        db.session.registry.clear()


def _rollback() -> None:
    from .extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001, S110 - the connection is already gone; nothing to undo
        pass


__all__ = ["RETRY_AFTER", "install", "part_of"]
