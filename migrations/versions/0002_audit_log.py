"""audit log: the SM3-chained audit_event table

Revision ID: 0002_audit
Revises: 0001_core
Create Date: 2026-11-22 05:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0002_audit'
down_revision = '0001_core'
branch_labels = None
depends_on = None


def upgrade():
    # seq is assigned by the writer under the chain lock (never a sequence/serial);
    # on SQLite "INTEGER PRIMARY KEY" makes it the rowid, so rows are kept in chain order.
    op.create_table('audit_event',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
              autoincrement=False, nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('client_id', sa.String(length=255), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('prev_hash', name='uq_audit_event_prev_hash'),
    sa.UniqueConstraint('hash', name='uq_audit_event_hash')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_ts', ['ts'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_ts')

    op.drop_table('audit_event')
