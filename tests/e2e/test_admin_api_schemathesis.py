"""schemathesis against the live admin API (``idp serve`` on PostgreSQL + Redis), in both
ways of authenticating: the L3 session with its CSRF token, and a bearer token of an
admin API client (made through the API by that administrator, then client credentials
at /token). Every operation of the OpenAPI document, a bounded number of generated
examples each: no server error, no status the operation does not declare, no body
outside its schema, the declared content type.

The session itself is planted in the provider's store by a short script with the
provider's environment (as tests/integration's ``sign_in`` does): signing in through
the pages at L3 is what tests/e2e/test_console_browser.py does.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import DEMO_CITIZEN_ID, ROOT, LiveIdP, provider, running

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 3  # per operation and mode: ~35 operations × 2 modes, a short run

PLANT_SESSION = """
import hashlib, json, secrets, sys, time
from idp import create_app
from idp.accounts import person_by_identifier
from idp.store import store
app = create_app()
with app.app_context():
    person = person_by_identifier(sys.argv[1], phone=False).person
    token = secrets.token_urlsafe(32)
    now = time.time()
    record = {"sid": secrets.token_urlsafe(16), "person_id": person.id,
              "auth_time": int(now), "created": now, "amr": ["pwd", "sms"], "acr": "L3",
              "channel": "web", "idle_timeout": None}
    store().set("sso:" + hashlib.sha256(token.encode()).hexdigest(), record, 3600)
    print(json.dumps({"cookie": app.config["SSO_COOKIE_NAME"], "token": token}))
"""


@pytest.fixture(scope="module")
def api_idp(tmp_path_factory) -> Iterator[LiveIdP]:
    with provider(tmp_path_factory, "api-idp") as idp:
        idp.run_cli("init", "--demo")
        idp.run_cli("admin", "grant", DEMO_CITIZEN_ID, "--role", "reviewer")
        idp.run_cli("admin", "grant", DEMO_CITIZEN_ID, "--role", "system_admin")
        with running(idp):
            yield idp


def _session(idp: LiveIdP) -> requests.Session:
    out = subprocess.run([sys.executable, "-c", PLANT_SESSION, DEMO_CITIZEN_ID], env=idp.env,
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    planted = json.loads(out.stdout.strip().splitlines()[-1])
    http = requests.Session()
    http.cookies.set(planted["cookie"], planted["token"], domain="127.0.0.1")
    csrf = http.get(idp.url("/admin/api/csrf"), timeout=10)
    assert csrf.status_code == 200, csrf.text
    http.headers["X-CSRFToken"] = csrf.json()["csrf_token"]
    return http


def _bearer(idp: LiveIdP, session: requests.Session) -> requests.Session:
    made = session.post(idp.url("/admin/api/api-clients"), timeout=10,
                        json={"name": "schemathesis", "scopes": ["admin:clients", "admin:keys",
                                                                 "admin:review"]})
    assert made.status_code == 201, made.text
    body = made.json()
    basic = base64.b64encode(f"{body['client']['client_id']}:{body['client_secret']}"
                             .encode()).decode()
    token = requests.post(idp.url("/token"), timeout=10,
                          data={"grant_type": "client_credentials",
                                "scope": "admin:clients admin:keys admin:review"},
                          headers={"Authorization": "Basic " + basic})
    assert token.status_code == 200, token.text
    http = requests.Session()  # no cookie, no CSRF: a script
    http.headers["Authorization"] = "Bearer " + token.json()["access_token"]
    return http


@pytest.fixture(scope="module")
def sessions(api_idp) -> dict[str, requests.Session]:
    session = _session(api_idp)
    return {"session": session, "bearer": _bearer(api_idp, session)}


@pytest.fixture(scope="module")
def admin_schema(api_idp):
    doc = requests.get(api_idp.url("/admin/api/openapi.json"), timeout=10).json()
    validate(doc)
    return schemathesis.openapi.from_dict(doc)


_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck), database=None)


def _checked(operation, http: requests.Session, base_url: str):
    @given(case=operation.as_strategy())
    @_SETTINGS
    def run(case):
        case.call_and_validate(base_url=base_url, session=http, checks=CHECKS)
    return run


def _run_all(schema, http: requests.Session, base_url: str) -> list[str]:
    """Each operation's generated cases, called and checked; the failures, described.
    (Driven by hand: schemathesis' lazy pytest integration does not run under this
    project's pytest.)"""
    failures = []
    statuses: Counter = Counter()
    http.hooks["response"] = [lambda resp, *args, **kwargs: statuses.update([resp.status_code])]
    for result in schema.get_all_operations():
        operation = result.ok()

        try:
            _checked(operation, http, base_url)()
        except Exception as exc:  # noqa: BLE001 - collected, reported below
            failures.append(f"{operation.method.upper()} {operation.path}: "
                            f"{str(exc).strip()[:600]}")
    # Not vacuous: the credentials work (answers, not only 401s), every operation ran.
    assert statuses[200] + statuses[201] >= 10 and statuses[401] == 0, statuses
    return failures


def test_admin_api_by_session_conforms_to_its_schema(admin_schema, sessions, api_idp):
    failures = _run_all(admin_schema, sessions["session"], api_idp.base_url)
    assert not failures, "\n\n".join(failures)


def test_admin_api_by_bearer_token_conforms_to_its_schema(admin_schema, sessions, api_idp):
    failures = _run_all(admin_schema, sessions["bearer"], api_idp.base_url)
    assert not failures, "\n\n".join(failures)
