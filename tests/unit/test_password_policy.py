"""The new-password policy: length, kinds of character, the common-passwords list, and
the person's own numbers."""

from __future__ import annotations

import pytest
from flask import Flask

from idp.authn import password_policy


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config.update(PASSWORD_MIN_LENGTH=8, PASSWORD_MIN_CLASSES=2, PASSWORD_DENYLIST_FILE=None)
    from flask_babel import Babel

    Babel(app)
    with app.app_context():
        yield app


def test_a_long_mixed_password_passes(app):
    assert password_policy.problem("Lantern-Rain-42") is None
    assert password_policy.problem("长城脚下的风1978") is None  # Chinese characters count


@pytest.mark.parametrize("password", ["123456789", "Password1", "PASSWORD123", "qwerty123",
                                      "woaini1314", "Woaini520", "abc123456!", "1qaz2wsx",
                                      "password@123"])
def test_common_passwords_are_refused_whatever_their_case(app, password):
    assert "常见密码" in (password_policy.problem(password) or "")


def test_the_shipped_list_is_packaged_and_not_tiny(app):
    assert len(password_policy.common_passwords()) > 200


def test_length_and_kinds(app):
    assert "至少需要 8 位" in password_policy.problem("Ab1defg")
    assert "类字符" in password_policy.problem("abcdefghij")
    app.config["PASSWORD_MIN_CLASSES"] = 1
    assert password_policy.problem("abcdefghij") is None
    assert password_policy.problem("x" * 257)
    assert password_policy.problem("Tab\tin-it-9") is not None


def test_the_persons_own_numbers_are_refused(app):
    number, phone = "11010519491231002X", "13912345678"
    own = dict(id_number=number, phone=phone, birth_date="19491231")
    assert password_policy.problem("Zz-231002x", **own)  # last six of the ID, any case
    assert password_policy.problem("Born19491231!", **own)
    assert password_policy.problem("Call-12345678", **own)  # the phone's last eight
    assert password_policy.problem("Lantern-Rain-42", **own) is None


def test_an_operator_list_adds_to_the_shipped_one(app, tmp_path):
    extra = tmp_path / "deny.txt"
    extra.write_text("# ours\nGov-Portal-2024\n", encoding="utf-8")
    app.config["PASSWORD_DENYLIST_FILE"] = str(extra)
    assert password_policy.problem("gov-portal-2024")
    assert password_policy.problem("Lantern-Rain-42") is None


def test_settings_refuse_unworkable_values():
    from idp import settings

    base = {**{k: getattr(settings.default, k) for k in dir(settings.default) if k.isupper()},
            "ISSUER": "https://id.example.gov.cn", "KEK": None}
    for bad, needle in (({"PASSWORD_MIN_LENGTH": 6}, "IDP_PASSWORD_MIN_LENGTH"),
                        ({"PASSWORD_MIN_CLASSES": 5}, "IDP_PASSWORD_MIN_CLASSES"),
                        ({"PASSWORD_DENYLIST_FILE": "/nonexistent/list"},
                         "IDP_PASSWORD_DENYLIST_FILE"),
                        ({"REGISTER_NUMBER_DAILY": 0}, "IDP_REGISTER_NUMBER_DAILY")):
        with pytest.raises(settings.ConfigError, match=needle):
            settings.validate({**base, **bad})
