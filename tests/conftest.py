"""Every integration test runs twice: SQLite with the embedded store, and PostgreSQL
with Redis (the production shape). Neither is mocked."""

from __future__ import annotations

import secrets

import pytest

from tests import backends

BACKENDS = ["embedded", "pg_redis"]


def pytest_collection_modifyitems(config, items):
    """With ``-n 2 --dist loadgroup`` (scripts/test.sh), what shares a costly fixture runs
    in one worker: each file as a whole (its module-scoped servers start once), the CAS
    files together (one session-scoped provider with Apache), and the resilience suite
    alone in one worker at a time (its faults kill and restart whole servers)."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path.startswith("tests/resilience/"):
            group = "resilience"
        elif "cas_setup" in getattr(item, "fixturenames", ()):
            group = "cas"
        else:
            group = path
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", params=BACKENDS)
def backend_config(request, tmp_path_factory):
    if request.param == "embedded":
        path = tmp_path_factory.mktemp("embedded")
        yield {"instance_path": str(path), "overrides": {}}
        return
    problem = backends.pg_available() or backends.redis_available()
    if problem:
        pytest.fail(f"PostgreSQL/Redis on 127.0.0.1 are required (scripts/test.sh starts them): "
                    f"{problem}")
    name, url = backends.create_pg_database()
    prefix = backends.redis_prefix()
    path = tmp_path_factory.mktemp("pg")
    yield {"instance_path": str(path),
           "overrides": {"DATABASE_URL": url, "REDIS_URL": backends.REDIS_URL,
                         "REDIS_PREFIX": prefix, "KEK": secrets.token_hex(32)}}
    backends.flush_redis_prefix(prefix)
    backends.drop_pg_database(name)


@pytest.fixture(scope="session")
def app(backend_config):
    from idp import create_app
    from idp.bootstrap import initialise
    from idp.extensions import db

    overrides = {"ISSUER": "http://localhost", "ARGON2_TIME_COST": 1,
                 "ARGON2_MEMORY_COST": 8 * 1024, "BACKCHANNEL_LOGOUT_BACKOFF": 0.05,
                 "CHANNEL_DEMOS": True,  # the demo pages are tested too
                 **backend_config["overrides"]}
    app = create_app(overrides, instance_path=backend_config["instance_path"])
    app.config["TESTING"] = True
    with app.app_context():
        initialise()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


_TABLES = ["consent", "refresh_token", "client", "person", "kv_entry", "membership",
           "legacy_account", "review_item", "admin_role", "merge_record",
           "organisation", "audit_pending", "totp_credential", "webauthn_credential",
           "audit_event"]


@pytest.fixture
def ctx(app):
    """An app context with empty tables and an empty store for one test."""
    from sqlalchemy import text

    from idp import clients
    from idp.extensions import db

    with app.app_context():
        clients._cache.clear()  # its rows belong to the tables emptied here
        for table in _TABLES:
            db.session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
        db.session.commit()
        prefix = app.config.get("REDIS_PREFIX")
        if app.config.get("REDIS_URL"):
            backends.flush_redis_prefix(prefix)
        yield app
        db.session.rollback()


@pytest.fixture
def client(ctx):
    return ctx.test_client()


@pytest.fixture
def person(ctx):
    from tests.helpers import make_person

    return make_person()


@pytest.fixture
def rp(ctx):
    from tests.helpers import make_client

    return make_client()
