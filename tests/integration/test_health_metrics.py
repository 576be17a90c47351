"""Health, readiness, metrics and failing closed — on both backends (tests/conftest.py).

"Unreachable" is real: a Redis client aimed at a loopback port nothing listens on, a
PostgreSQL URL at such a port. Nothing is mocked."""

from __future__ import annotations

import contextlib
import secrets
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import CITIZEN_ID, authorize_url, follow_login, tokens_for


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


@contextlib.contextmanager
def _store_unreachable(app):
    from idp.store.redis import RedisStore

    real = app.extensions["idp.store"]
    app.extensions["idp.store"] = RedisStore(f"redis://127.0.0.1:{_dead_port()}/0",
                                             prefix="dead:")
    try:
        yield
    finally:
        app.extensions["idp.store"] = real


def _samples(client, **kw) -> dict[tuple, float]:
    resp = client.get("/metrics", **kw)
    assert resp.status_code == 200, resp.status_code
    assert resp.mimetype == "text/plain"
    out = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# -- health and readiness -----------------------------------------------------------------

def test_healthz_and_readyz_name_every_part(client, app):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    store_part = "redis" if app.config.get("REDIS_URL") else "store"
    assert resp.get_json()["checks"] == {"database": "ok", "migrations": "ok",
                                         "signing_keys": "ok", store_part: "ok"}
    assert resp.headers["Cache-Control"] == "no-store"


def test_readyz_names_an_unreachable_store(client, app):
    with _store_unreachable(app):
        resp = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # alive, just not ready
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"].startswith("unreachable (")
    assert body["checks"]["database"] == "ok"
    assert "127.0.0.1" not in resp.get_data(as_text=True)  # no addresses, no URLs


def test_readyz_names_migrations_behind_head(client, app):
    from sqlalchemy import text

    from idp.extensions import db

    head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    db.session.execute(text("UPDATE alembic_version SET version_num = '0001_core'"))
    db.session.commit()
    try:
        resp = client.get("/readyz")
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head})
        db.session.commit()
    assert resp.status_code == 503
    assert resp.get_json()["failing"] == ["migrations"]
    assert "idp init" in resp.get_json()["checks"]["migrations"]


def test_readyz_names_missing_signing_keys(client, app):
    from idp.extensions import db
    from idp.models import SigningKey

    keys = app.extensions["idp.keys"]
    active = db.session.scalars(db.select(SigningKey).where(SigningKey.status == "active")).all()
    for row in active:
        row.status = "retired"
    db.session.commit()
    keys.invalidate()
    try:
        resp = client.get("/readyz")
    finally:
        for row in active:
            row.status = "active"
        db.session.commit()
        keys.invalidate()
    assert resp.status_code == 503
    assert resp.get_json()["failing"] == ["signing_keys"]
    assert "idp keys rotate" in resp.get_json()["checks"]["signing_keys"]


def test_database_unreachable_fails_closed(tmp_path):
    """A provider whose PostgreSQL is gone: not ready (database named, the checks that
    need it skipped), the sign-in page a 503 page, the token endpoint a 503 OAuth error."""
    from idp import create_app

    app = create_app({"ISSUER": "http://localhost", "KEK": secrets.token_hex(32),
                      "DATABASE_URL": f"postgresql://idp@127.0.0.1:{_dead_port()}/idp",
                      "DB_CONNECT_TIMEOUT": 2}, instance_path=str(tmp_path))
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["failing"][0] == "database"
    assert body["checks"]["migrations"] == "skipped (database unreachable)"
    page = client.get("/authorize?client_id=rp1&response_type=code&scope=openid"
                      "&redirect_uri=https%3A%2F%2Frp.example%2Fcb")
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "暂时无法登录" in page.get_data(as_text=True)
    import base64

    # A client id no other test used: idp.clients caches look-ups per process.
    basic = base64.b64encode(f"dbdown-{secrets.token_hex(4)}:secret".encode()).decode()
    token = client.post("/token", data={"grant_type": "client_credentials"},
                        headers={"Authorization": "Basic " + basic})
    assert token.status_code == 503
    assert token.get_json()["error"] == "temporarily_unavailable"
    assert client.get("/healthz").status_code == 200
    # The scrape still answers (the database's own figures left out) and counts the 503s.
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert 'idp_store_errors_total{part="database"}' in scrape.get_data(as_text=True)
    assert "idp_audit_pending_entries" not in scrape.get_data(as_text=True)


# -- failing closed with the store down ---------------------------------------------------

def test_store_unreachable_sign_in_page_says_so(client, app, rp):
    with _store_unreachable(app):
        zh = client.get(authorize_url(rp))
    assert zh.status_code == 503
    assert zh.headers["Retry-After"].isdigit()
    text = zh.get_data(as_text=True)
    assert "暂时无法登录" in text and "Traceback" not in text
    assert 'role="alert"' in text


def test_store_unreachable_page_in_english(client, app, rp):
    # One language per test: the test app context keeps the first request's locale.
    with _store_unreachable(app):
        en = client.get(authorize_url(rp) + "&lang=en")
    assert en.status_code == 503
    assert "Sign-in is temporarily unavailable" in en.get_data(as_text=True)


def test_store_unreachable_never_accepts_a_token_it_cannot_check(client, app, rp, person):
    """Revocation lives in the store: while it cannot be read, an access token is
    refused (503), never taken as unrevoked; discovery and the JWKS still answer."""
    tokens = tokens_for(client, rp)
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    assert client.get("/userinfo", headers=bearer).status_code == 200
    with _store_unreachable(app):
        userinfo = client.get("/userinfo", headers=bearer)
        refresh = client.post("/token", headers=rp.basic, data={
            "grant_type": "refresh_token", "refresh_token": tokens.get("refresh_token", "x")})
        jwks = client.get("/jwks")
        discovery = client.get("/.well-known/openid-configuration")
    assert userinfo.status_code == 503
    assert userinfo.get_json()["error"] == "temporarily_unavailable"
    assert refresh.status_code in (400, 503)  # never 200 while revocations are unreadable
    assert refresh.status_code != 200
    assert jwks.status_code == 200 and discovery.status_code == 200
    assert client.get("/userinfo", headers=bearer).status_code == 200  # back by itself


# -- metrics ------------------------------------------------------------------------------

def test_metrics_only_for_allowed_networks_or_the_token(client, app):
    outsider = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    assert client.get("/metrics").status_code == 200  # loopback by default
    assert client.get("/metrics", **outsider).status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::ffff:203.0.113.9"}
                      ).status_code == 404
    token = secrets.token_urlsafe(24)
    app.config["METRICS_TOKEN"] = token
    try:
        assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"},
                          **outsider).status_code == 200
        assert client.get("/metrics", headers={"Authorization": f"Bearer {token}x"},
                          **outsider).status_code == 404
        assert client.get("/metrics", headers={"Authorization": f"Basic {token}"},
                          **outsider).status_code == 404
    finally:
        app.config["METRICS_TOKEN"] = None
    from idp.metrics import networks

    real = app.extensions["idp.metrics_allow"]
    app.extensions["idp.metrics_allow"] = networks("203.0.113.0/24")
    try:
        assert client.get("/metrics", **outsider).status_code == 200
        assert client.get("/metrics").status_code == 404  # loopback no longer listed
    finally:
        app.extensions["idp.metrics_allow"] = real


def test_metrics_count_sign_ins_tokens_requests_and_lockouts(client, app, rp, person):
    before = _samples(client)
    tokens_for(client, rp)
    failed = app.test_client()
    follow_login(failed, failed.get(authorize_url(rp)), password="wrong-password-1")
    after = _samples(client)

    ok = {"channel": "web", "method": "pwd", "level": "L2", "outcome": "success"}
    assert _value(after, "idp_sign_ins_total", **ok) == _value(before, "idp_sign_ins_total",
                                                               **ok) + 1
    bad = {"channel": "web", "method": "none", "level": "none", "outcome": "failure"}
    assert _value(after, "idp_sign_ins_total", **bad) == _value(before, "idp_sign_ins_total",
                                                                **bad) + 1
    grant = {"grant": "authorization_code"}
    assert _value(after, "idp_tokens_issued_total", **grant) == \
        _value(before, "idp_tokens_issued_total", **grant) + 1
    token_ok = {"endpoint": "/token", "method": "POST", "status": "200"}
    assert _value(after, "idp_http_requests_total", **token_ok) >= \
        _value(before, "idp_http_requests_total", **token_ok) + 1
    assert _value(after, "idp_http_request_duration_seconds_count", endpoint="/token") >= 1
    assert ("idp_audit_pending_entries", ()) in after
    assert ("idp_audit_chain_lag_seconds", ()) in after

    locks = _value(after, "idp_lockouts_total")
    for _ in range(app.config["LOCKOUT_THRESHOLD"]):
        c = app.test_client()
        follow_login(c, c.get(authorize_url(rp)), username=CITIZEN_ID, password="nope-nope-1")
    assert _value(_samples(client), "idp_lockouts_total") == locks + 1


def test_metrics_count_store_errors_and_import_progress(client, app, rp):
    from idp.extensions import db
    from idp.models import LegacyAccount

    before = _value(_samples(client), "idp_store_errors_total", part="redis")
    with _store_unreachable(app):
        assert client.get(authorize_url(rp)).status_code == 503
    assert _value(_samples(client), "idp_store_errors_total", part="redis") == before + 1

    for i, state in enumerate(["created", "created", "queued"]):
        db.session.add(LegacyAccount(source="hr_sys", legacy_id=str(i), fingerprint="f" * 64,
                                     row_enc="x", state=state, rule="test", run_id="r" * 32))
    db.session.commit()
    samples = _samples(client)
    assert _value(samples, "idp_legacy_accounts", source="hr_sys", state="created") == 2
    assert _value(samples, "idp_legacy_accounts", source="hr_sys", state="queued") == 1


@pytest.mark.parametrize("url,problem", [
    ("http://h:6379", "must start with one of"),
    ("redis+sentinel://h:26379", "must name the Sentinel service"),
    ("redis+cluster://h:notaport", "is not host:port"),
])
def test_bad_redis_urls_stop_start_up(tmp_path, url, problem):
    from idp import create_app
    from idp.settings import ConfigError

    with pytest.raises(ConfigError, match=problem):
        create_app({"REDIS_URL": url}, instance_path=str(tmp_path))


def test_provider_starts_with_its_cluster_down_and_says_so(tmp_path):
    """A Cluster client maps slots when first used, not at start-up: the provider comes
    up while Redis is down and answers 503 (readyz naming redis), not a crash."""
    from idp import create_app

    app = create_app({"ISSUER": "http://localhost",
                      "REDIS_URL": f"redis+cluster://127.0.0.1:{_dead_port()}"},
                     instance_path=str(tmp_path))
    from idp.bootstrap import initialise

    with app.app_context():
        initialise()
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["failing"] == ["redis"]


def test_sign_ins_are_counted_by_the_channel_they_happened_on(client, app, person):
    """The mobile app's sign-in (a public client of channel "app") is counted as "app",
    taken from the SSO session the sign-in just started, not assumed to be "web"."""
    from idp.clients import register_client
    from tests.helpers import RP

    register_client(client_id="app1", name="掌上办", secret=None, auth_method="none",
                    redirect_uris=["https://rp.example/cb"], grant_types=[],
                    post_logout_redirect_uris=[], first_party=True, channel="app")
    app_rp = RP("app1", None)
    before = _samples(client)
    tokens_for(app.test_client(), app_rp)
    after = _samples(client)
    labels = {"channel": "app", "method": "pwd", "level": "L2", "outcome": "success"}
    assert _value(after, "idp_sign_ins_total", **labels) == \
        _value(before, "idp_sign_ins_total", **labels) + 1
