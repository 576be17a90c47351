"""The level a session may claim: never above the account, never above its authenticators."""

from __future__ import annotations

import pytest

from idp.authn import assurance


@pytest.mark.parametrize("account, amr, expected", [
    ("L3", ["pwd"], "L2"),               # one factor proves only L2
    ("L3", ["pwd", "sms"], "L3"),        # two factors on a real-name account
    ("L2", ["pwd", "sms"], "L2"),        # ... but not above what the register confirmed
    ("L3", ["hwk"], "L3"),               # WebAuthn with user verification is multi-factor
    ("L4", ["hwk", "L4key"], "L4"),      # a credential bound at L4
    ("L3", ["hwk", "L4key"], "L3"),      # the account caps it
    ("L4", ["idcard", "face"], "L4"),    # chip read + face match at a kiosk
    ("L5", ["counter"], "L5"),
    ("L5", ["pwd", "otp"], "L3"),
    (None, ["sms"], "L2"),
    ("L3", [], "L1"),
])
def test_session_level(account, amr, expected):
    assert assurance.session_level(account, amr) == expected


@pytest.mark.parametrize("acr_values, expected", [
    (None, None), ("", None), ("L3", "L3"), ("L4 L3", "L3"),
    ("urn:other L4", "L4"), ("urn:other", None), ("L9", None),
])
def test_required_level_is_the_lowest_accepted(acr_values, expected):
    assert assurance.required_level(acr_values) == expected


def test_meets_and_public_amr():
    assert assurance.meets("L3", "L3") and assurance.meets("L4", "L3")
    assert not assurance.meets("L2", "L3") and not assurance.meets(None, "L2")
    assert assurance.meets(None, None)
    assert assurance.public_amr(["hwk", "L4key", "hwk", "qr"]) == ["hwk", "qr"]
