"""``rediss://``: the store over TLS to a real redis-server with a TLS port, the
server's certificate verified against the CA given in the URL (redis-py's
``ssl_ca_certs``); a server whose certificate does not verify is unreachable (503),
never used unverified."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.resilience import flows, servers


def _self_signed(directory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "redis.crt", directory / "redis.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_redis():
    procs = servers.Processes()
    try:
        yield _start(procs)
    finally:
        procs.stop_all()
        procs.remove_dirs()


def _start(procs: servers.Processes) -> tuple[int, str]:
    root = procs.scratch()
    cert, key = _self_signed(root)
    (port,) = servers.free_ports(1)
    procs.start([servers.need("redis-server"), "--port", "0", "--tls-port", str(port),
                 "--bind", "127.0.0.1", "--tls-cert-file", cert, "--tls-key-file", key,
                 "--tls-ca-cert-file", cert, "--tls-auth-clients", "no", "--save", "",
                 "--dir", str(root)], root / "redis-tls.log")
    probe = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=cert,
                        socket_timeout=2)
    servers.wait_for("redis over TLS", probe.ping)
    return port, cert


def test_sign_in_sso_and_logout_over_tls(tls_redis, tmp_path):
    port, ca = tls_redis
    app = flows.provider(str(tmp_path / "ok"),
                         REDIS_URL=f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}")
    rp1, rp2 = flows.seed(app)
    browser = app.test_client()
    tokens = flows.sign_in(app, browser, rp1)
    assert flows.sso_code(app, browser, rp2) is not None
    assert app.test_client().get("/readyz").get_json()["checks"]["redis"] == "ok"
    flows.logout(app, browser, tokens["id_token"])
    assert flows.sso_code(app, browser, rp1) is None


def test_a_certificate_that_does_not_verify_is_never_used(tls_redis, tmp_path):
    port, _ca = tls_redis
    app = flows.provider(str(tmp_path / "bad"), REDIS_URL=f"rediss://127.0.0.1:{port}/0")
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["failing"] == ["redis"]
    rp1, _rp2 = flows.seed(app)
    with app.app_context():
        from tests.helpers import authorize_url

        page = app.test_client().get(authorize_url(rp1))
    assert page.status_code == 503
