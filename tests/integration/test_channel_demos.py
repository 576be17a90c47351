"""The channel demo pages can push requests to any citizen: served in the embedded
default only, never by a deployment on an external database unless it asks."""

from __future__ import annotations

import pytest

DEMO_PAGES = ["/demo/hall", "/demo/hotline", "/demo/app", "/demo/kiosk/"]


@pytest.mark.parametrize("path", DEMO_PAGES)
def test_demo_pages_follow_the_deployment_shape(ctx, client, path):
    status = client.get(path).status_code
    if ctx.config["EMBEDDED"]:
        assert status == 200
    else:
        assert status == 404


@pytest.mark.parametrize("value, embedded, expected", [
    (None, True, True), (None, False, False), ("true", False, True), ("false", True, False),
    (False, True, False), (True, False, True),
])
def test_demos_enabled_setting(value, embedded, expected):
    from idp.channels import demos_enabled

    assert demos_enabled({"CHANNEL_DEMOS": value, "EMBEDDED": embedded}) is expected
