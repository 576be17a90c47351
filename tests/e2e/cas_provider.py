"""One provider for the CAS end-to-end tests (python-cas, Apache mod_auth_cas, the CAS
demo site): started once per run, since each start costs seconds of CLI calls.

``idp serve --demo`` on issuer http://localhost:P (the demo sites on P+1..P+3, the CAS
one on P+3), Apache on P+4 (its TLS front on P+5), and two loopback services of the
test's own (an http application and an https proxy callback, on ports of their own).
Service tickets live ``TICKET_TTL`` seconds, so the expiry tests wait only that long."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cas_helpers import Service, self_signed

from .apache_cas import Apache
from .conftest import LiveIdP, provider, running

CITIZEN_ID = "11010519491231002X"
CITIZEN_PASSWORD = "E2e-Password-2026"
TICKET_TTL = 3
BACKEND = "https://backend.example.gov.cn/api"


@dataclass
class CasSetup:
    idp: LiveIdP
    app: Service        # http://127.0.0.1:…, registered as app/* for client py-cas
    callback: Service   # https, the proxy callback, registered for py-cas too
    apache: Apache      # registered as client "apache"

    @property
    def province(self) -> str:
        return f"http://localhost:{self.idp.port + 1}"

    @property
    def cas_demo(self) -> str:
        return f"http://localhost:{self.idp.port + 3}"


@pytest.fixture(scope="session")
def cas_setup(tmp_path_factory) -> Iterator[CasSetup]:
    cert, key = self_signed(tmp_path_factory.mktemp("cas-tls"))
    app, callback = Service(), Service(tls=(cert, key))
    env = {"IDP_CAS_TICKET_TTL": str(TICKET_TTL), "IDP_CAS_PROXY_CA_FILE": str(cert)}
    # Not under pytest's private temporary directory: Apache's children run as nobody
    # when the tests run as root, and must reach their scripts and cookie directory.
    root = Path(tempfile.mkdtemp(prefix="idp-apache-"))
    root.chmod(0o755)
    try:
        with provider(tmp_path_factory, "cas-idp", span=8, host="localhost", env=env) as idp:
            out = idp.run_cli("init", "--demo")
            assert out["demo"]["cas_site"]["url"] == f"http://localhost:{idp.port + 3}"
            idp.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "王五",
                        "--password", CITIZEN_PASSWORD, "--phone", "13912345678")
            reg = idp.run_cli("client", "add", "--client-id", "py-cas", "--name", "办事大厅",
                              "--protocol", "cas", "--first-party",
                              "--scope", "profile", "--scope", "phone",
                              "--service", app.base + "/app/*",
                              "--service", callback.base + "/*",
                              "--service", "https://backend.example.gov.cn/*")
            assert reg["protocol"] == "cas" and reg.get("client_secret") is None
            apache = Apache(root, port=idp.port + 6, tls_port=idp.port + 7,
                            idp_url=idp.base_url)
            idp.run_cli("client", "add", "--client-id", "apache",
                        "--name", "市民服务网（Apache）", "--protocol", "cas", "--first-party",
                        "--service", apache.base + "/*")
            with running(idp, serve_args=("--demo",)):
                apache.start()
                try:
                    yield CasSetup(idp, app, callback, apache)
                finally:
                    apache.stop()
    finally:
        app.close()
        callback.close()
        shutil.rmtree(root, ignore_errors=True)
