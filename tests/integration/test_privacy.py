"""Personal data never reaches the logs in clear, and the English catalogue is complete."""

from __future__ import annotations

import logging
import os

from tests.helpers import CITIZEN_ID, CITIZEN_PHONE, authorize_url, form_fields, tokens_for


def test_no_id_number_or_phone_in_logs(client, person, rp, caplog):
    caplog.set_level(logging.DEBUG)
    for username in (CITIZEN_ID, CITIZEN_PHONE, "110105194912310021"):
        resp = client.get(authorize_url(rp))
        fields = form_fields(client.get(resp.headers["Location"]).get_data(as_text=True))
        client.post("/login", data={**fields, "username": username, "password": "bad-password"})
    tokens_for(client, rp, scope="openid profile phone")
    logging.getLogger("idp.test").warning("person %s with phone %s", CITIZEN_ID, CITIZEN_PHONE)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "person 110105********002X with phone 139****5678" in text
    for secret in (CITIZEN_ID, CITIZEN_PHONE, "110105194912310021"):
        assert secret not in text


def test_masking_covers_tracebacks(caplog):
    try:
        raise ValueError(f"lookup failed for {CITIZEN_ID}")
    except ValueError:
        logging.getLogger("idp.test").exception("boom")
    record = caplog.records[-1]
    assert CITIZEN_ID not in (record.exc_text or "")
    assert "110105********002X" in record.exc_text


def test_every_message_has_an_english_translation():
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # The same map as babel.cfg: every package that renders pages.
    method_map = [("idp/**.py", "python"), ("admin/**.py", "python"),
                  ("connectors/**.py", "python"), ("idp/templates/**.html", "jinja2"),
                  ("admin/templates/**.html", "jinja2")]
    found = {msg for _f, _l, msg, _c, _x in extract_from_dir(
        root, method_map, keywords={"_": None, "_l": None, "gettext": None})
        if isinstance(msg, str)}
    with open(os.path.join(root, "idp/translations/en/LC_MESSAGES/messages.po"), "rb") as fh:
        catalog = read_po(fh, locale="en")
    translated = {m.id for m in catalog if m.id and m.string}
    assert found, "no messages extracted"
    assert not found - translated, f"untranslated: {sorted(found - translated)}"


def test_no_translation_can_break_out_of_an_html_attribute():
    """Translations are rendered as safe markup, often inside attributes (data-msg-…):
    a straight quote there would end the attribute. English uses curly quotes."""
    from babel.messages.pofile import read_po

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "idp/translations/en/LC_MESSAGES/messages.po"), "rb") as fh:
        catalog = read_po(fh, locale="en")
    bad = [m.string for m in catalog if m.id and m.string and ('"' in m.string
                                                              or "<" in m.string)]
    assert not bad, bad
