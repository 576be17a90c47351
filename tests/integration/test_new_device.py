"""New-device notice: an SMS when an account signs in from a browser it never used on a
network it never used; quiet otherwise, and when turned off."""

from __future__ import annotations

from idp import audit
from idp.audit import AuditEvent
from idp.extensions import db
from tests.helpers import CITIZEN_PHONE, sms_outbox
from tests.integration.test_account_pages import sign_in


def notices(ctx, since: int) -> list[dict]:
    return [m for m in sms_outbox(ctx)[since:]
            if m["phone"] == CITIZEN_PHONE and m["purpose"] == "notice_new_device"]


def test_only_a_new_browser_on_a_new_network_is_told(ctx, person):
    start = len(sms_outbox(ctx))
    laptop = sign_in(ctx, addr="203.0.113.9")  # the account's first sign-in: nothing to compare
    assert notices(ctx, start) == []
    sign_in(ctx, laptop, addr="198.51.100.7")  # the known browser elsewhere
    sign_in(ctx, addr="203.0.113.77")  # a fresh browser on a known network
    assert notices(ctx, start) == []
    sign_in(ctx, addr="192.0.2.5")  # a fresh browser on a network never used
    told = notices(ctx, start)
    assert len(told) == 1 and told[0]["code"] == ""
    audit.flush()
    entry = db.session.scalars(db.select(AuditEvent).where(
        AuditEvent.event == "login.new_device")).one()
    assert entry.details["network"] == "192.0.2.*" and "192.0.2.5" not in str(entry.details)
    # The device cookie holds a random value only, and is HttpOnly.
    cookie = laptop.get_cookie("idp_device")
    assert cookie is not None and cookie.http_only and CITIZEN_PHONE not in cookie.value


def test_the_notice_can_be_turned_off(ctx, person):
    ctx.config["NEW_DEVICE_NOTICE"] = False
    try:
        start = len(sms_outbox(ctx))
        sign_in(ctx, addr="203.0.113.9")
        sign_in(ctx, addr="192.0.2.5")
        assert notices(ctx, start) == []
    finally:
        ctx.config["NEW_DEVICE_NOTICE"] = True
