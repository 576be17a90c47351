"""personal data and private keys at rest: SM4-GCM with HMAC-SM3 blind indexes

Moves ``person.id_number`` and ``person.phone`` into encrypted columns with keyed
blind indexes, and wraps every signing key's private JWK, converting rows in batches.
On PostgreSQL the whole migration is one transaction: it ends converted or unchanged.
Needs the application's key-encryption key, so it runs through ``idp init`` (which
runs Alembic inside the application).

Revision ID: 0003_pii
Revises: 0002_audit
"""
import sqlalchemy as sa
from alembic import op
from flask import current_app

revision = '0003_pii'
down_revision = '0002_audit'
branch_labels = None
depends_on = None

BATCH = 1000
person = sa.table('person', sa.column('id', sa.String), sa.column('id_number', sa.String),
                  sa.column('phone', sa.String), sa.column('id_number_enc', sa.Text),
                  sa.column('id_number_idx', sa.String), sa.column('phone_enc', sa.Text),
                  sa.column('phone_idx', sa.String))
signing_key = sa.table('signing_key', sa.column('kid', sa.String),
                       sa.column('private_jwk', sa.Text))


def _crypto():
    return current_app.extensions['idp.fieldcrypto']


def upgrade():
    with op.batch_alter_table('person') as batch:
        batch.add_column(sa.Column('id_number_enc', sa.Text(), nullable=True))
        batch.add_column(sa.Column('id_number_idx', sa.String(64), nullable=True))
        batch.add_column(sa.Column('phone_enc', sa.Text(), nullable=True))
        batch.add_column(sa.Column('phone_idx', sa.String(64), nullable=True))

    conn, fc = op.get_bind(), _crypto()
    last = ''
    while True:
        rows = conn.execute(sa.select(person.c.id, person.c.id_number, person.c.phone)
                            .where(person.c.id > last).order_by(person.c.id).limit(BATCH)).all()
        if not rows:
            break
        for pid, number, phone in rows:
            conn.execute(person.update().where(person.c.id == pid).values(
                id_number_enc=fc.encrypt(number, 'person.id_number'),
                id_number_idx=fc.blind_index(number, 'person.id_number'),
                phone_enc=fc.encrypt(phone, 'person.phone') if phone else None,
                phone_idx=fc.blind_index(phone, 'person.phone') if phone else None))
        last = rows[-1][0]

    with op.batch_alter_table('person') as batch:
        batch.drop_index('ix_person_id_number')
        batch.drop_index('ix_person_phone')
        batch.drop_column('id_number')
        batch.drop_column('phone')
        batch.alter_column('id_number_enc', existing_type=sa.Text(), nullable=False)
        batch.alter_column('id_number_idx', existing_type=sa.String(64), nullable=False)
        batch.create_index('ix_person_id_number_idx', ['id_number_idx'], unique=True)
        batch.create_index('ix_person_phone_idx', ['phone_idx'], unique=False)

    for kid, jwk in conn.execute(sa.select(signing_key.c.kid, signing_key.c.private_jwk)).all():
        if not jwk.startswith('sm4gcm1.'):
            conn.execute(signing_key.update().where(signing_key.c.kid == kid)
                         .values(private_jwk=fc.wrap_key(jwk, kid)))


def downgrade():
    conn, fc = op.get_bind(), _crypto()
    for kid, jwk in conn.execute(sa.select(signing_key.c.kid, signing_key.c.private_jwk)).all():
        if jwk.startswith('sm4gcm1.'):
            conn.execute(signing_key.update().where(signing_key.c.kid == kid)
                         .values(private_jwk=fc.unwrap_key(jwk, kid)))
    with op.batch_alter_table('person') as batch:
        batch.add_column(sa.Column('id_number', sa.String(18), nullable=True))
        batch.add_column(sa.Column('phone', sa.String(20), nullable=True))
    for pid, enc, phone_enc in conn.execute(
            sa.select(person.c.id, person.c.id_number_enc, person.c.phone_enc)).all():
        conn.execute(person.update().where(person.c.id == pid).values(
            id_number=fc.decrypt(enc, 'person.id_number'),
            phone=fc.decrypt(phone_enc, 'person.phone') if phone_enc else None))
    with op.batch_alter_table('person') as batch:
        batch.drop_index('ix_person_id_number_idx')
        batch.drop_index('ix_person_phone_idx')
        batch.drop_column('id_number_enc')
        batch.drop_column('id_number_idx')
        batch.drop_column('phone_enc')
        batch.drop_column('phone_idx')
        batch.alter_column('id_number', existing_type=sa.String(18), nullable=False)
        batch.create_index('ix_person_id_number', ['id_number'], unique=True)
        batch.create_index('ix_person_phone', ['phone'], unique=False)
