"""The channel demo pages sign anyone in at a kiosk and push requests to any citizen:
served only when asked for (``idp serve --demo`` or IDP_CHANNEL_DEMOS=true)."""

from __future__ import annotations

import pytest

DEMO_PAGES = ["/demo/hall", "/demo/hotline", "/demo/app", "/demo/kiosk/"]


@pytest.mark.parametrize("path", DEMO_PAGES)
def test_demo_pages_are_served_when_asked_for(client, path):
    assert client.get(path).status_code == 200  # the test app asks (tests/conftest.py)


def test_demo_pages_are_off_by_default(tmp_path):
    from idp import create_app

    app = create_app({"ISSUER": "http://localhost"}, instance_path=str(tmp_path))
    with app.app_context():
        from idp.bootstrap import initialise

        initialise()
    browser = app.test_client()
    assert app.config["EMBEDDED"] and browser.get("/").status_code == 200
    for path in DEMO_PAGES:
        assert browser.get(path).status_code == 404, path


@pytest.mark.parametrize("value, expected", [
    (None, False), (False, False), ("false", False), ("true", True), (True, True), ("1", True),
])
def test_demos_enabled_setting(value, expected):
    from idp.channels import demos_enabled

    assert demos_enabled({"CHANNEL_DEMOS": value}) is expected
