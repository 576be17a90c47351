"""Envelope encryption (idp.crypto.envelope): adopting the derived keys changes nothing
existing; the data keys are stored wrapped, never in clear; a KEK that wraps none of
them is refused by name; IDP_KEK_PREVIOUS is checked at start-up."""

from __future__ import annotations

import secrets

import pytest

from idp import settings
from idp.crypto import envelope
from idp.crypto.fieldcrypt import PURPOSES, FieldCrypto, KekRing, derived, kek_id
from idp.settings import ConfigError
from tests.resilience import flows


def test_adoption_keeps_ciphertext_indexes_and_subjects(tmp_path):
    kek = secrets.token_hex(32)
    raw = bytes.fromhex(kek)
    legacy = FieldCrypto(raw)  # how every value was written before data keys existed
    sealed = legacy.encrypt("110105199003071239", "person.id_number")
    index = legacy.blind_index("110105199003071239", "person.id_number")
    subject = legacy.pairwise_subject("rp.example", "p1")

    app = flows.provider(str(tmp_path), KEK=kek)  # initialise() adopts
    with app.app_context():
        from idp.extensions import db

        rows = db.session.scalars(db.select(envelope.DataKey)).all()
        assert sorted(r.purpose for r in rows) == sorted(PURPOSES)
        assert {r.kek_id for r in rows} == {kek_id(raw)}
        expected = derived(raw)
        for row in rows:  # wrapped: neither the data key nor the KEK appears
            assert expected[row.purpose].hex() not in row.wrapped and kek not in row.wrapped
        stored = FieldCrypto(raw, loader=envelope.load)
        assert stored.decrypt(sealed, "person.id_number") == "110105199003071239"
        assert stored.blind_index("110105199003071239", "person.id_number") == index
        assert stored.pairwise_subject("rp.example", "p1") == subject
        assert envelope.adopt(stored.ring) == []  # a second time: nothing to do
        assert envelope.status(stored.ring)["state"] == "complete"
        db.session.remove()


def test_rotation_rewraps_and_an_unknown_kek_is_refused(tmp_path):
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    app = flows.provider(str(tmp_path), KEK=old.hex())
    with app.app_context():
        from idp.extensions import db

        sealed = app.extensions["idp.fieldcrypto"].encrypt("13800138000", "person.phone")
        ring = KekRing(new, old)
        assert envelope.status(ring)["pending"] == 4
        out = envelope.rotate(ring)
        assert out["rewrapped"] == 4 and out["pending"] == 0
        after = FieldCrypto(new, loader=envelope.load)  # a worker started after the rotation
        assert after.decrypt(sealed, "person.phone") == "13800138000"
        stale = FieldCrypto(old, loader=envelope.load)  # one still given only the old KEK
        with pytest.raises(envelope.UnknownKek, match="IDP_KEK_PREVIOUS"):
            stale.decrypt(sealed, "person.phone")
        db.session.remove()


@pytest.mark.parametrize("previous, message", [
    ("zz", "IDP_KEK_PREVIOUS must be 32 bytes"),
    ("same", "same key as IDP_KEK"),
])
def test_kek_previous_is_validated(tmp_path, monkeypatch, previous, message):
    for key in ("IDP_KEK", "IDP_KEK_PREVIOUS", "DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    kek = secrets.token_hex(32)
    cfg = settings.load(str(tmp_path), {"ISSUER": "http://localhost", "KEK": kek,
                                        "KEK_PREVIOUS": kek if previous == "same" else previous})
    with pytest.raises(ConfigError, match=message):
        settings.validate(cfg, instance_path=str(tmp_path))
