"""Issue 11's settings are checked at start-up like every other: a time zone that does
not exist, a cooling-off or history length that is not a positive whole number."""

from __future__ import annotations

import pytest

from tests.unit.test_settings_validate import check, clean_env, refused  # noqa: F401


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "UTC+8"])
def test_an_unknown_time_zone_stops_start_up(tmp_path, zone):
    assert "IDP_TIME_ZONE" in refused(tmp_path, TIME_ZONE=zone)


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Hong_Kong", "UTC"])
def test_real_zones_pass(tmp_path, zone):
    check(tmp_path, TIME_ZONE=zone)


@pytest.mark.parametrize(("key", "value"), [("ACCOUNT_CLOSE_COOLING_DAYS", 0),
                                            ("ACCOUNT_HISTORY_DAYS", -1),
                                            ("ACCOUNT_HISTORY_PAGE", 2.5),
                                            ("NEW_DEVICE_MEMORY_DAYS", "long")])
def test_account_numbers_must_be_positive_whole_numbers(tmp_path, key, value):
    assert "IDP_" + key in refused(tmp_path, **{key: value})
