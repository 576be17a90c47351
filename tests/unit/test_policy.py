"""idp.policy: which channel may use which grant, and who gets a refresh token."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from idp import policy
from idp.policy import CIBA, DEVICE_CODE, JWT_BEARER


def client(channel, *grants):
    return SimpleNamespace(channel=channel, check_grant_type=lambda g: g in grants)


@pytest.mark.parametrize("channel, grant", [
    ("web", "authorization_code"), ("web", DEVICE_CODE), ("app", "authorization_code"),
    ("kiosk", DEVICE_CODE), ("kiosk", JWT_BEARER), ("hall", CIBA), ("hall", DEVICE_CODE),
    ("hotline", CIBA), ("hall", "client_credentials"), ("kiosk", "refresh_token"),
])
def test_allowed_combinations(channel, grant):
    assert policy.channel_allows(channel, grant)
    assert policy.forbidden_grants(channel, [grant]) is None


@pytest.mark.parametrize("channel, grant, reason", [
    ("web", CIBA, "grant type ciba is for hall or hotline clients, not web"),
    ("app", CIBA, "grant type ciba is for hall or hotline clients, not app"),
    ("web", JWT_BEARER, "grant type jwt-bearer is for kiosk clients, not web"),
    ("hall", JWT_BEARER, "grant type jwt-bearer is for kiosk clients, not hall"),
    ("app", DEVICE_CODE, "grant type device_code is for web or kiosk or hall clients, not app"),
    ("hotline", DEVICE_CODE, "not hotline"),
    ("kiosk", CIBA, "not kiosk"),
])
def test_forbidden_combinations_say_why(channel, grant, reason):
    assert not policy.channel_allows(channel, grant)
    assert reason in policy.forbidden_grants(channel, ["authorization_code", grant])


def test_unknown_channel_is_refused():
    assert "unknown channel" in policy.forbidden_grants("tv", ["authorization_code"])


def test_a_row_edited_behind_the_registration_is_still_held_to_the_channel_rule():
    assert policy.may_use_grant(client("hall", CIBA), CIBA)
    assert not policy.may_use_grant(client("web", CIBA), CIBA)
    assert not policy.may_use_grant(client("hall"), CIBA)  # not registered for it


@pytest.mark.parametrize("c, grant, scope, channel, expected", [
    (client("web", "refresh_token"), "authorization_code", "openid", None, True),
    (client("web"), "authorization_code", "openid", None, False),  # not registered
    (client("kiosk", "refresh_token"), "authorization_code", "openid", None, False),
    (client("hall", "refresh_token"), DEVICE_CODE, "openid", "hall", True),
    (client("web", "refresh_token"), DEVICE_CODE, "openid", "kiosk", False),  # on a kiosk
    (client("kiosk", "refresh_token"), JWT_BEARER, "openid offline_access", "kiosk", False),
    (client("hall", "refresh_token"), CIBA, "openid", None, False),  # no offline_access
    (client("hall", "refresh_token"), CIBA, "openid offline_access", None, True),
    (client("hotline"), CIBA, "openid offline_access", None, False),
    (client("app", "refresh_token"), "refresh_token", "openid", None, True),
])
def test_refresh_tokens(c, grant, scope, channel, expected):
    assert policy.issues_refresh_token(c, grant, scope, channel) is expected


def test_device_grant_channel_is_never_web():
    assert policy.device_channel(client("web")) == "kiosk"
    assert policy.device_channel(None) == "kiosk"
    assert policy.device_channel(client("hall")) == "hall"


def test_short_grant_names():
    assert policy.grant_type("ciba") == CIBA and policy.grant_type("jwt-bearer") == JWT_BEARER
    assert policy.grant_type(DEVICE_CODE) == DEVICE_CODE
    assert policy.grant_type("authorization_code") == "authorization_code"
