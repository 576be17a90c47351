"""SMS sign-in answers the same for registered and unregistered numbers even when the
gateway refuses every message (issue 10, defect 2): only a registered number ever
reaches the gateway, so "could not send" would name it."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from idp import audit
from idp.audit import AuditEvent
from idp.authn import sms
from idp.authn.sms_gateways import GatewayError
from idp.extensions import db
from tests.helpers import CITIZEN_PHONE, authorize_url, form_fields, pkce_pair, query

OTHER_PHONE = "13700001111"  # registered to nobody


class FailingGateway:
    """Refuses every message, as a gateway in an outage does."""

    calls = 0

    def send(self, message) -> None:
        FailingGateway.calls += 1
        raise GatewayError("gateway answered HTTP 503")


class InstantFailure:
    """Refuses at once (a bad credential, a full queue): faster than any real send."""

    def send(self, message) -> None:
        raise GatewayError("gateway rejected the request")


@pytest.fixture
def failing(ctx):
    saved = dict(ctx.config)
    ctx.config["SMS_GATEWAY"] = f"{__name__}:FailingGateway"
    ctx.extensions.pop("idp.plugin.SMS_GATEWAY", None)
    FailingGateway.calls = 0
    yield ctx.config
    ctx.extensions.pop("idp.plugin.SMS_GATEWAY", None)
    ctx.config.clear()
    ctx.config.update(saved)


def _sms_page(client, rp):
    resp = client.get(authorize_url(rp, code_challenge=pkce_pair()[1],
                                    code_challenge_method="S256"))
    rid = query(resp.headers["Location"])["rid"]
    page = client.get(f"/login/sms?rid={rid}")
    return rid, form_fields(page.get_data(as_text=True))["csrf_token"]


def _masked(resp, phone: str) -> str:
    html = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"',
                  resp.get_data(as_text=True))
    return html.replace(phone, "P").replace(phone[:3] + "****" + phone[-4:], "M")


def _post(client, rid, token, **form):
    return client.post("/login/sms", data={"csrf_token": token, "rid": rid, **form})


def test_a_failing_gateway_answers_alike_for_registered_and_unregistered(ctx, client, person,
                                                                         rp, failing, caplog):
    caplog.set_level(logging.INFO)
    rid, token = _sms_page(client, rp)
    sent = {p: _post(client, rid, token, action="send", phone=p)
            for p in (CITIZEN_PHONE, OTHER_PHONE)}
    assert FailingGateway.calls == 1  # the registered number's message was really tried
    assert {r.status_code for r in sent.values()} == {200}
    pages = {p: _masked(r, p) for p, r in sent.items()}
    assert pages[CITIZEN_PHONE] == pages[OTHER_PHONE]
    assert "短信暂时无法发送" not in pages[CITIZEN_PHONE]
    assert "如未收到短信" in pages[CITIZEN_PHONE]
    # Asking again at once is refused alike (the failed send kept its interval) …
    again = {p: _masked(_post(client, rid, token, action="send", phone=p), p)
             for p in (CITIZEN_PHONE, OTHER_PHONE)}
    assert again[CITIZEN_PHONE] == again[OTHER_PHONE] and "秒后再试" in again[OTHER_PHONE]
    # … and a guessed code reads alike (the code that never went out is still there).
    guessed = {p: _post(client, rid, token, action="verify", phone=p, code="123456")
               for p in (CITIZEN_PHONE, OTHER_PHONE)}
    assert {r.status_code for r in guessed.values()} == {400}
    assert _masked(guessed[CITIZEN_PHONE], CITIZEN_PHONE) == _masked(guessed[OTHER_PHONE],
                                                                     OTHER_PHONE)
    # The operators learn of the failure; nobody learns the number.
    assert "HTTP 503" in caplog.text and CITIZEN_PHONE not in caplog.text
    audit.flush()
    db.session.expire_all()
    rows = db.session.scalars(db.select(AuditEvent).where(
        AuditEvent.event == "sms.undelivered")).all()
    assert [r.subject for r in rows] == [person.id]
    dump = json.dumps([r.details for r in rows], ensure_ascii=False)
    assert CITIZEN_PHONE not in dump and "139****5678" in dump and "HTTP 503" in dump


def test_a_fast_failure_takes_as_long_as_a_usual_send(ctx, failing):
    """A refusal that comes back at once would be quicker than the decoy, which takes
    the gateway's usual time."""
    from idp.store import store

    failing["SMS_GATEWAY"] = f"{__name__}:InstantFailure"
    ctx.extensions.pop("idp.plugin.SMS_GATEWAY", None)
    store().set(sms._LATENCY_KEY, 0.3, 60)
    started = time.monotonic()
    result = sms.send_code(CITIZEN_PHONE, "login", ip=None, conceal=True)
    took = time.monotonic() - started
    assert result.ok and result.undelivered and took >= 0.3


def test_without_conceal_a_failure_is_still_reported(ctx, failing):
    """Step-up and the hotline read-back send to a known person's phone: saying that
    the message could not go out reveals nothing there, and helps."""
    result = sms.send_code(CITIZEN_PHONE, "stepup", ip=None)
    assert (result.ok, result.error) == (False, "gateway_error")
