"""Prometheus metrics (``/metrics``), counted without touching the endpoints.

* requests by endpoint (the route's rule, so cardinality is bounded), method and status,
  with a latency histogram per endpoint — from ``before_request``/``after_request``;
* sign-ins by channel, method, level and outcome, tokens issued by grant, accounts
  locked — from the audit entries as they are recorded (``idp.audit.on_entry``), since
  every sign-in and token is audited anyway;
* store errors by part (redis, database) — from :mod:`idp.availability`;
* audit chain lag and legacy import progress — read from the database at scrape time.

Under gunicorn every worker is its own process: ``idp serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a directory (prometheus-client's multi-process mode)
and any worker's ``/metrics`` answers for all of them. Access: clients in
``METRICS_ALLOW`` (addresses or networks; loopback by default) or bearing
``METRICS_TOKEN``; everyone else gets the ordinary 404 page, as if it did not exist.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, request

log = logging.getLogger("idp.metrics")
bp = Blueprint("metrics", __name__)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SIGN_INS = {"login.success": "success", "login.failure": "failure",
             "stepup.success": "success", "stepup.failure": "failure"}
_LABEL = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Metrics:
    """This process's metric objects. Made again after a fork (gunicorn's workers):
    the multi-process mode writes each process's values to its own files."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Histogram,
            disable_created_metrics,
            values,
        )

        disable_created_metrics()  # the *_created series only double what is scraped
        self.pid = os.getpid()
        self.multiprocess = multiprocess_dir() is not None
        if self.multiprocess:
            # prometheus-client chooses in-memory or file-backed values when it is first
            # imported; ``idp serve`` may have imported it before it set the directory.
            values.ValueClass = values.get_value_class()
        self.registry = None if self.multiprocess else CollectorRegistry()
        r = {"registry": self.registry}
        self.requests = Counter("idp_http_requests", "HTTP requests answered",
                                ["endpoint", "method", "status"], **r)
        self.latency = Histogram("idp_http_request_duration_seconds",
                                 "Time to answer an HTTP request", ["endpoint"],
                                 buckets=_LATENCY_BUCKETS, **r)
        self.sign_ins = Counter("idp_sign_ins", "Sign-ins and step-ups",
                                ["channel", "method", "level", "outcome"], **r)
        self.tokens = Counter("idp_tokens_issued", "Tokens issued by /token", ["grant"], **r)
        self.lockouts = Counter("idp_lockouts", "Accounts locked after wrong passwords", **r)
        self.store_errors = Counter("idp_store_errors", "Requests refused because a part "
                                    "was unreachable", ["part"], **r)


_lock = threading.Lock()
_current: _Metrics | None = None


def _m() -> _Metrics:
    global _current
    m = _current
    if m is None or m.pid != os.getpid() or m.multiprocess != (multiprocess_dir() is not None):
        with _lock:
            if _current is None or _current.pid != os.getpid() \
                    or _current.multiprocess != (multiprocess_dir() is not None):
                _current = _Metrics()
            m = _current
    return m


def _label(value: Any, default: str = "none") -> str:
    text = str(value) if value not in (None, "") else default
    return text if _LABEL.match(text) else "other"


# -- counting -----------------------------------------------------------------------------

def store_error(part: str) -> None:
    _m().store_errors.labels(_label(part)).inc()


def lockout() -> None:
    _m().lockouts.inc()


def _on_entry(entry) -> None:
    try:
        details = entry.details or {}
        if entry.event in _SIGN_INS:
            amr = details.get("amr") or []
            method = details.get("method") or (amr[0] if isinstance(amr, list) and amr else None)
            outcome = "locked" if details.get("reason") == "locked" else _SIGN_INS[entry.event]
            _m().sign_ins.labels(_label(_channel(details), "web"), _label(method),
                                 _label(details.get("acr")), outcome).inc()
        elif entry.event == "token.issued":
            _m().tokens.labels(_label(details.get("grant_type"))).inc()
    except Exception:  # noqa: BLE001 - counting must never fail a sign-in
        log.exception("could not count audit entry %s", getattr(entry, "event", "?"))


def _channel(details: dict) -> str | None:
    """Where the sign-in happened: the audit entry's, else the SSO session's it just
    started (``idp.authn.session.start`` leaves it on ``g``; the entry names its sid)."""
    if details.get("channel"):
        return details["channel"]
    from flask import has_app_context

    sess = g.get("idp_sso") if has_app_context() else None
    if sess is not None and details.get("sid") and getattr(sess, "sid", None) == details["sid"]:
        return getattr(sess, "channel", None)
    return None


def _started() -> None:
    g.metrics_t0 = time.perf_counter()  # not idp_*: _fresh_request_state clears those


def _answered(response):
    started = g.pop("metrics_t0", None)
    if started is None:
        return response
    rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    m = _m()
    m.requests.labels(rule, request.method if request.method in _METHODS else "other",
                      str(response.status_code)).inc()
    m.latency.labels(rule).observe(time.perf_counter() - started)
    return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


# -- exposition ---------------------------------------------------------------------------

class _DatabaseGauges:
    """Read at scrape time: what the database knows better than any one process."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            with self.app.app_context():
                pending, oldest, legacy = _database_figures()
        except Exception as exc:  # noqa: BLE001 - the scrape still answers; readyz says why
            log.warning("metrics: database figures unavailable (%s)", type(exc).__name__)
            return
        yield GaugeMetricFamily("idp_audit_pending_entries",
                                "Audit entries recorded but not chained yet", value=pending)
        yield GaugeMetricFamily("idp_audit_chain_lag_seconds",
                                "Age of the oldest audit entry not chained yet",
                                value=max(0.0, time.time() - oldest) if oldest else 0.0)
        accounts = GaugeMetricFamily("idp_legacy_accounts",
                                     "Imported legacy accounts by source and match state",
                                     labels=["source", "state"])
        for source, state, count in legacy:
            accounts.add_metric([_label(source), _label(state)], count)
        yield accounts


def _database_figures():
    from sqlalchemy import func, select

    from .audit.models import AuditPending
    from .extensions import db
    from .models import LegacyAccount

    try:
        pending, oldest = db.session.execute(
            select(func.count(), func.min(AuditPending.ts))).one()
        legacy = db.session.execute(
            select(LegacyAccount.source, LegacyAccount.state, func.count())
            .group_by(LegacyAccount.source, LegacyAccount.state)).all()
    finally:
        db.session.remove()
    return int(pending), oldest, [tuple(r) for r in legacy]


def _allowed() -> bool:
    cfg = current_app.config
    token = cfg.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(
            header[7:].strip().encode(), str(token).encode()):
        return True
    try:
        addr = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in net for net in current_app.extensions["idp.metrics_allow"])


@bp.get("/metrics")
def metrics_view():
    if not _allowed():
        abort(404)
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    m = _m()
    if m.multiprocess:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(m.registry))
    registry.register(_DatabaseGauges(current_app._get_current_object()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


class _Forward:
    """This process's metrics inside the registry of one scrape."""

    def __init__(self, registry) -> None:
        self.registry = registry

    def collect(self):
        return self.registry.collect()


def networks(entries) -> list:
    """``METRICS_ALLOW`` as networks; raises ValueError naming a bad entry."""
    if isinstance(entries, str):
        entries = entries.split(",")
    out = []
    for entry in entries or []:
        if not str(entry).strip():
            continue
        try:
            out.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or network") from None
    return out


def init_app(app: Flask) -> None:
    from .audit.log import on_entry

    app.extensions["idp.metrics_allow"] = networks(app.config.get("METRICS_ALLOW"))
    app.register_blueprint(bp)
    # First of all before_request hooks, so a request another hook refuses is timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, _started)
    app.after_request(_answered)
    on_entry(_on_entry)
