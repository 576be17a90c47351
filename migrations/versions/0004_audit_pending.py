"""audit log: audit_pending, where record() writes and the chainer reads

``idp.audit.record`` inserts into ``audit_pending`` with no lock; the chainer moves rows
into ``audit_event`` (seq, prev_hash, hash) moments later, deleting them in the same
transaction.

Downgrading chains whatever is still pending first (with the application's chainer,
under the chain lock), then drops the table, so no recorded entry is lost. Stop the
servers first: an entry recorded after the drain and before the drop would be lost with
the table, and servers running the old code would not chain anything anyway.

Revision ID: 0004_audit_pending
Revises: 0003_pii
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_audit_pending'
down_revision = '0003_pii'
branch_labels = None
depends_on = None


def upgrade():
    # BIGSERIAL on PostgreSQL; "INTEGER PRIMARY KEY" (the rowid) on SQLite.
    op.create_table('audit_pending',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
              autoincrement=True, nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('client_id', sa.String(length=255), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade():
    from idp.audit.log import CHAIN_BATCH, chain_locked, lock_chain

    conn = op.get_bind()
    lock_chain(conn, wait=True)  # held to the end of the migration's transaction
    while chain_locked(conn, limit=CHAIN_BATCH) == CHAIN_BATCH:
        pass
    op.drop_table('audit_pending')
