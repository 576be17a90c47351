"""SMS one-time codes: single use, expiry, tries, send limits shared by workers, the dev
outbox, the HTTP gateway, and sign-in by SMS code that does not reveal who is registered."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import audit
from idp.audit import AuditEvent
from idp.authn import sms
from idp.extensions import db
from idp.store import store
from tests.helpers import (
    CITIZEN_PHONE,
    authorize_url,
    exchange,
    form_fields,
    last_sms_code,
    pkce_pair,
    query,
    sms_outbox,
)

OTHER_PHONE = "13700001111"  # registered to nobody


@pytest.fixture
def cfg(ctx):
    """Change settings for one test; restored afterwards (the app is per session)."""
    saved = dict(ctx.config)
    yield ctx.config
    ctx.config.clear()
    ctx.config.update(saved)


def test_code_is_six_digits_single_use_and_stored_only_as_a_mac(ctx):
    sent = sms.send_code("+86 139-1234-5678", "login", ip="192.0.2.1")
    assert sent.ok and sent.masked_phone == "139****5678"
    code = last_sms_code(ctx, CITIZEN_PHONE, "login")
    assert len(code) == 6 and code.isdigit()
    record = store().get(sms._code_key(CITIZEN_PHONE, "login"))
    assert record is not None and code not in json.dumps(record)
    # Another purpose's code does not open this one.
    assert sms.verify_code(CITIZEN_PHONE, "stepup", code).error == "expired"
    assert sms.verify_code(CITIZEN_PHONE, "login", code).ok
    again = sms.verify_code(CITIZEN_PHONE, "login", code)
    assert not again.ok and again.error == "expired"


def test_code_expires(ctx, monkeypatch):
    sms.send_code(CITIZEN_PHONE, "login", ip=None)
    code = last_sms_code(ctx, CITIZEN_PHONE, "login")
    real = time.time
    monkeypatch.setattr(sms, "_now", lambda: real() + ctx.config["SMS_CODE_TTL"] + 1)
    result = sms.verify_code(CITIZEN_PHONE, "login", code)
    assert not result.ok and result.error == "expired"
    monkeypatch.setattr(sms, "_now", real)
    assert not sms.verify_code(CITIZEN_PHONE, "login", code).ok  # gone for good


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** 6:06d}"


def test_five_wrong_tries_kill_the_code(ctx):
    sms.send_code(CITIZEN_PHONE, "login", ip=None)
    code = last_sms_code(ctx, CITIZEN_PHONE, "login")
    for left in (4, 3, 2, 1):
        result = sms.verify_code(CITIZEN_PHONE, "login", _wrong(code))
        assert (result.ok, result.error, result.tries_left) == (False, "invalid", left)
    assert sms.verify_code(CITIZEN_PHONE, "login", _wrong(code)).error == "too_many"
    dead = sms.verify_code(CITIZEN_PHONE, "login", code)
    assert not dead.ok


def test_right_code_on_the_fifth_try_still_works(ctx):
    sms.send_code(CITIZEN_PHONE, "stepup", ip=None)
    code = last_sms_code(ctx, CITIZEN_PHONE, "stepup")
    for _ in range(4):
        assert sms.verify_code(CITIZEN_PHONE, "stepup", "abc").error == "invalid"
    assert sms.verify_code(CITIZEN_PHONE, "stepup", f" {code[:3]} {code[3:]} ").ok


def test_per_phone_interval_and_hourly_limit(ctx, cfg):
    first = sms.send_code(CITIZEN_PHONE, "login", ip=None)
    second = sms.send_code(CITIZEN_PHONE, "stepup", ip=None)  # other purpose, same phone
    assert first.ok and second.error == "rate_limited"
    assert 0 < second.retry_after <= cfg["SMS_PHONE_INTERVAL"]
    with ctx.test_request_context():
        assert "秒后再试" in sms.message_for(second.error, second.retry_after)

    cfg.update(SMS_PHONE_INTERVAL=0.001, SMS_PHONE_HOURLY=3)
    store().delete(f"sms:gap:{sms._phone_key(CITIZEN_PHONE)}")
    results = []
    for _ in range(3):
        time.sleep(0.01)
        results.append(sms.send_code(CITIZEN_PHONE, "login", ip=None))
    # The first send above counted too: 1 + 2 allowed, then refused for the hour.
    assert [r.ok for r in results] == [True, True, False]
    assert results[-1].error == "rate_limited" and results[-1].retry_after == 3600


def test_per_ip_limit(ctx, cfg):
    cfg["SMS_IP_HOURLY"] = 2
    phones = ["13700000001", "13700000002", "13700000003"]
    got = [sms.send_code(p, "login", ip="198.51.100.7").ok for p in phones]
    assert got == [True, True, False]
    assert sms.send_code("13700000004", "login", ip="198.51.100.8").ok


def test_limits_and_codes_hold_across_two_app_instances(ctx, backend_config):
    from idp import create_app

    other = create_app({"ISSUER": "http://localhost", **backend_config["overrides"],
                        "SECRET_KEY": ctx.config["SECRET_KEY"]},
                       instance_path=ctx.instance_path)
    assert sms.send_code(CITIZEN_PHONE, "login", ip="203.0.113.9").ok
    code = last_sms_code(ctx, CITIZEN_PHONE, "login")
    with other.app_context():
        assert sms.send_code(CITIZEN_PHONE, "login", ip=None).error == "rate_limited"
        assert sms.verify_code(CITIZEN_PHONE, "login", code).ok
    assert not sms.verify_code(CITIZEN_PHONE, "login", code).ok  # used on the other one
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def test_dev_outbox_has_the_message_and_the_log_line_is_masked(ctx, caplog):
    caplog.set_level(logging.INFO, logger="idp.authn.sms_gateways")
    assert sms.send_code(CITIZEN_PHONE, "ciba", ip=None).ok
    msg = sms_outbox(ctx)[-1]
    assert msg["phone"] == CITIZEN_PHONE and msg["purpose"] == "ciba"
    assert msg["code"] in msg["text"] and "【统一身份认证平台】" in msg["text"]
    logged = [r.getMessage() for r in caplog.records if r.name == "idp.authn.sms_gateways"]
    assert logged and "139****5678" in logged[-1]
    assert CITIZEN_PHONE not in caplog.text and msg["code"] not in caplog.text


def test_invalid_phone_is_refused_before_anything_is_sent(ctx):
    before = len(sms_outbox(ctx))
    assert sms.send_code("12345", "login", ip=None).error == "invalid_phone"
    assert sms.verify_code("+1 415 555 0100", "login", "123456").error == "invalid_phone"
    assert len(sms_outbox(ctx)) == before


class _Gateway(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers.get("X-Api-Key"), json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_gateway(ctx, cfg):
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Gateway.received, _Gateway.status = [], 200
    cfg.update(SMS_GATEWAY="http", SMS_HTTP_URL=f"http://127.0.0.1:{server.server_port}/sms",
               SMS_HTTP_AUTH_HEADER="X-Api-Key", SMS_HTTP_AUTH_VALUE="k-123",
               SMS_HTTP_TIMEOUT=2.0)
    ctx.extensions.pop("idp.plugin.SMS_GATEWAY", None)
    yield server
    ctx.extensions.pop("idp.plugin.SMS_GATEWAY", None)
    server.shutdown()
    server.server_close()


def test_http_gateway_posts_json_with_the_configured_auth_header(ctx, http_gateway):
    assert sms.send_code(CITIZEN_PHONE, "stepup", ip=None).ok
    key, body = _Gateway.received[-1]
    assert key == "k-123"
    assert body["phone"] == CITIZEN_PHONE and body["purpose"] == "stepup"
    assert sms.verify_code(CITIZEN_PHONE, "stepup", body["params"]["code"]).ok


def test_http_gateway_failure_is_a_clear_result_and_leaves_no_code(ctx, http_gateway, caplog):
    _Gateway.status = 503
    result = sms.send_code(CITIZEN_PHONE, "login", ip=None)
    assert (result.ok, result.error) == (False, "gateway_error")
    assert "HTTP 503" in caplog.text and CITIZEN_PHONE not in caplog.text
    assert store().get(sms._code_key(CITIZEN_PHONE, "login")) is None
    # The failed send did not start the interval: once the gateway is back, it goes.
    _Gateway.status = 200
    assert sms.send_code(CITIZEN_PHONE, "login", ip=None).ok


def test_unreachable_gateway(ctx, cfg):
    cfg.update(SMS_GATEWAY="http", SMS_HTTP_URL="http://127.0.0.1:9/sms", SMS_HTTP_TIMEOUT=1.0)
    ctx.extensions.pop("idp.plugin.SMS_GATEWAY", None)
    try:
        assert sms.send_code(CITIZEN_PHONE, "login", ip=None).error == "gateway_error"
    finally:
        ctx.extensions.pop("idp.plugin.SMS_GATEWAY", None)


# -- sign-in with an SMS code ------------------------------------------------------------


def _sms_page(client, rp):
    resp = client.get(authorize_url(rp, code_challenge=pkce_pair()[1],
                                    code_challenge_method="S256"))
    login = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "短信验证码登录" in login
    rid = query(resp.headers["Location"])["rid"]
    page = client.get(f"/login/sms?rid={rid}")
    assert page.status_code == 200
    return rid, form_fields(page.get_data(as_text=True))["csrf_token"]


def test_sms_sign_in_gives_an_l2_session_with_amr_sms(ctx, client, person, rp):
    verifier, challenge = pkce_pair()
    resp = client.get(authorize_url(rp, code_challenge=challenge, code_challenge_method="S256",
                                    nonce="n-sms"))
    rid = query(resp.headers["Location"])["rid"]
    token = form_fields(client.get(f"/login/sms?rid={rid}").get_data(as_text=True))["csrf_token"]
    sent = client.post("/login/sms", data={"csrf_token": token, "rid": rid, "action": "send",
                                           "phone": "139 1234 5678"})
    assert sent.status_code == 200 and "139****5678" in sent.get_data(as_text=True)
    code = last_sms_code(ctx, CITIZEN_PHONE, "login")
    wrong = client.post("/login/sms", data={"csrf_token": token, "rid": rid, "action": "verify",
                                            "phone": CITIZEN_PHONE, "code": _wrong(code)})
    assert wrong.status_code == 400 and "验证码错误" in wrong.get_data(as_text=True)
    ok = client.post("/login/sms", data={"csrf_token": token, "rid": rid, "action": "verify",
                                         "phone": CITIZEN_PHONE, "code": code})
    assert ok.status_code == 302 and ok.headers["Location"].startswith("/authorize?")
    final = client.get(ok.headers["Location"])
    if final.headers["Location"].startswith("/consent"):
        fields = form_fields(client.get(final.headers["Location"]).get_data(as_text=True))
        final = client.get(client.post("/consent", data={**fields, "consent": "allow"})
                           .headers["Location"])
    q = query(final.headers["Location"])
    body = exchange(client, rp, q["code"], verifier).get_json()
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    claims = jwt.decode(body["id_token"], jwks, algorithms=["ES256", "RS256"]).claims
    assert claims["amr"] == ["sms"] and claims["acr"] == "L2"

    audit.flush()
    db.session.expire_all()
    rows = db.session.scalars(db.select(AuditEvent).where(
        AuditEvent.event.in_(["login.success", "login.failure"]))).all()
    assert {r.event for r in rows} == {"login.success", "login.failure"}
    dump = json.dumps([r.details for r in rows], ensure_ascii=False)
    assert CITIZEN_PHONE not in dump and "139****5678" in dump and code not in dump


def test_sms_sign_in_does_not_reveal_whether_a_phone_is_registered(ctx, client, person, rp):
    rid, token = _sms_page(client, rp)
    before = len(sms_outbox(ctx))
    pages = {}
    for phone in (CITIZEN_PHONE, OTHER_PHONE):
        resp = client.post("/login/sms", data={"csrf_token": token, "rid": rid,
                                               "action": "send", "phone": phone})
        assert resp.status_code == 200
        pages[phone] = _masked_page(resp, phone)
    assert pages[CITIZEN_PHONE] == pages[OTHER_PHONE]
    assert [m["phone"] for m in sms_outbox(ctx)[before:]] == [CITIZEN_PHONE]  # only the registered
    # Asking again at once is refused alike, registered or not.
    again = {p: client.post("/login/sms", data={"csrf_token": token, "rid": rid, "action": "send",
                                                "phone": p}).get_data(as_text=True)
             for p in (CITIZEN_PHONE, OTHER_PHONE)}
    assert all("秒后再试" in page for page in again.values())
    # A guessed code for the unregistered number fails like a wrong one.
    resp = client.post("/login/sms", data={"csrf_token": token, "rid": rid, "action": "verify",
                                           "phone": OTHER_PHONE, "code": "123456"})
    assert resp.status_code == 400 and "验证码" in resp.get_data(as_text=True)


def test_sms_sign_in_form_needs_csrf(client, person):
    resp = client.post("/login/sms", data={"action": "send", "phone": CITIZEN_PHONE})
    assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)


def _masked_page(resp, phone: str) -> str:
    """The page with the phone (plain and masked) and the CSRF token taken out: the
    token's signature carries a timestamp, so two pages a second apart differ there."""
    html = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"',
                  resp.get_data(as_text=True))
    return html.replace(phone, "P").replace(
        phone[:3] + "****" + phone[-4:], "M")


def test_a_wrong_code_reads_alike_for_registered_and_unregistered_numbers(ctx, client,
                                                                          person, rp):
    """Send, then one wrong code: "wrong code" for one number and "code expired" for the
    other would tell who is registered in two requests."""
    rid, token = _sms_page(client, rp)
    for phone in (CITIZEN_PHONE, OTHER_PHONE):
        assert client.post("/login/sms", data={"csrf_token": token, "rid": rid,
                                               "action": "send",
                                               "phone": phone}).status_code == 200
    code = last_sms_code(ctx, CITIZEN_PHONE, "login")
    for tries in range(ctx.config["SMS_CODE_MAX_TRIES"]):
        pages, codes = {}, set()
        for phone in (CITIZEN_PHONE, OTHER_PHONE):
            resp = client.post("/login/sms", data={"csrf_token": token, "rid": rid,
                                                   "action": "verify", "phone": phone,
                                                   "code": _wrong(code)})
            codes.add(resp.status_code)
            pages[phone] = _masked_page(resp, phone)
        assert codes == {400} and pages[CITIZEN_PHONE] == pages[OTHER_PHONE], tries
    assert "错误次数过多" in pages[OTHER_PHONE]
    assert client.get_cookie("idp_sso") is None


class SlowGateway:
    """A gateway that takes a while to accept, as real ones do over the network."""

    delay = 0.4

    def send(self, message) -> None:
        time.sleep(self.delay)


def test_sending_takes_as_long_for_an_unregistered_number(ctx, client, person, rp, cfg):
    cfg["SMS_GATEWAY"] = f"{__name__}:SlowGateway"
    ctx.extensions.pop("idp.plugin.SMS_GATEWAY", None)
    try:
        rid, token = _sms_page(client, rp)
        took = {}
        for phone in (CITIZEN_PHONE, OTHER_PHONE):
            started = time.monotonic()
            resp = client.post("/login/sms", data={"csrf_token": token, "rid": rid,
                                                   "action": "send", "phone": phone})
            took[phone] = time.monotonic() - started
            assert resp.status_code == 200
    finally:
        ctx.extensions.pop("idp.plugin.SMS_GATEWAY", None)
    assert took[CITIZEN_PHONE] >= SlowGateway.delay
    assert took[OTHER_PHONE] >= SlowGateway.delay * 0.75, took


def test_per_ip_limit_counts_an_ipv6_host_by_its_64(ctx, cfg):
    cfg["SMS_IP_HOURLY"] = 2
    ips = ["2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2:ffff::c"]
    got = [sms.send_code(f"1370000001{i}", "login", ip=ip).ok for i, ip in enumerate(ips)]
    assert got == [True, True, False]
    assert sms.send_code("13700000019", "login", ip="2001:db8:1:3::1").ok
    # An IPv4 client seen through an IPv6 socket is the same client.
    cfg["SMS_IP_HOURLY"] = 1
    assert sms.send_code("13700000020", "login", ip="192.0.2.44").ok
    assert sms.send_code("13700000021", "login", ip="::ffff:192.0.2.44").error == "rate_limited"


def test_an_unconfigured_deployment_sends_nothing_rather_than_writing_codes_to_a_file(
        tmp_path):
    from idp import create_app
    from idp.authn import sms

    app = create_app({"ISSUER": "http://localhost", "EMBEDDED": False, "KEK": "22" * 32,
                      "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3"},
                     instance_path=str(tmp_path))
    with app.test_request_context():
        assert not app.config["EMBEDDED"] and not app.testing
        with pytest.raises(sms.GatewayError, match="not configured"):
            sms.gateway().send(None)
    assert not (tmp_path / "sms_outbox.log").exists()
