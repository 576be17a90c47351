"""The at-rest migration converts a populated plain-text database without losing a row,
on SQLite and on PostgreSQL, and is reversible."""

from __future__ import annotations

import json

import pytest
from flask_migrate import downgrade, upgrade
from joserfc.jwk import ECKey
from sqlalchemy import text

from tests import backends

PEOPLE = 2500  # more than one conversion batch


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_app(request, tmp_path):
    from idp import create_app

    overrides = {"ISSUER": "http://localhost", "KEK": "11" * 32}
    name = None
    if request.param == "postgresql":
        name, url = backends.create_pg_database()
        overrides["DATABASE_URL"] = url
    app = create_app(overrides, instance_path=str(tmp_path))
    yield app
    with app.app_context():
        from idp.extensions import db

        db.engine.dispose()
    if name:
        backends.drop_pg_database(name)


def _number(i: int) -> str:
    from idp.identity import compute_check_char

    body = f"1101051990{(i // 28000) % 12 + 1:02d}{i // 1000 % 28 + 1:02d}{i % 1000:03d}"
    return body + compute_check_char(body)


def test_plain_rows_are_encrypted_and_indexed_without_loss(fresh_app):
    from idp.extensions import db
    from idp.models import Person, SigningKey, id_number_index, phone_index

    with fresh_app.app_context():
        directory = fresh_app.extensions["migrate"].directory
        upgrade(directory=directory, revision="0002_audit")
        numbers = [_number(i) for i in range(PEOPLE)]
        assert len(set(numbers)) == PEOPLE
        db.session.execute(text(
            "INSERT INTO person (id, id_number, id_kind, name, phone, status, assurance_level,"
            " created_at, updated_at) VALUES (:id, :n, 'resident', :name, :phone, 'active',"
            " 'L2', 0, 0)"), [
            {"id": f"p{i:05d}", "n": n, "name": f"测试{i}",
             "phone": f"139{i:08d}" if i % 2 else None} for i, n in enumerate(numbers)])
        jwk = ECKey.generate_key("P-256", private=True).as_dict(private=True)
        db.session.execute(text(
            "INSERT INTO signing_key (kid, alg, private_jwk, status, created_at) "
            "VALUES ('old', 'ES256', :j, 'active', 0)"), {"j": json.dumps(jwk)})
        db.session.commit()

        upgrade(directory=directory)

        assert db.session.scalar(text("SELECT count(*) FROM person")) == PEOPLE
        raw = db.session.execute(text("SELECT id_number_enc, phone_enc FROM person")).all()
        assert all(r[0].startswith("sm4gcm1.") and numbers[0] not in r[0] for r in raw)
        for i in (0, 1, 1234, PEOPLE - 1):
            p = db.session.scalar(db.select(Person).where(
                Person.id_number_idx == id_number_index(numbers[i])))
            assert p.id == f"p{i:05d}" and p.id_number == numbers[i]
            assert p.phone == (f"139{i:08d}" if i % 2 else None)
        assert db.session.scalar(db.select(Person.id).where(
            Person.phone_idx == phone_index("13900000001"))) == "p00001"
        wrapped = db.session.get(SigningKey, "old").private_jwk
        assert wrapped.startswith("sm4gcm1.") and jwk["d"] not in wrapped
        assert json.loads(fresh_app.extensions["idp.fieldcrypto"].unwrap_key(wrapped, "old")) == jwk

        db.session.commit()
        downgrade(directory=directory, revision="0002_audit")
        back = dict(db.session.execute(text("SELECT id, id_number FROM person")).all())
        assert back["p00000"] == numbers[0] and len(back) == PEOPLE
        row = db.session.execute(text("SELECT private_jwk FROM signing_key")).scalar_one()
        assert json.loads(row) == jwk


def test_wrong_kek_cannot_read_the_data(fresh_app):
    from idp.crypto.fieldcrypt import DecryptionError, FieldCrypto

    with fresh_app.app_context():
        token = fresh_app.extensions["idp.fieldcrypto"].encrypt("11010519491231002X",
                                                                "person.id_number")
    with pytest.raises(DecryptionError):
        FieldCrypto(bytes.fromhex("22" * 32)).decrypt(token, "person.id_number")
