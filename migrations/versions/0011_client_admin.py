"""relying parties: status (active / disabled / pending) and the previous secret's grace

Revision ID: 0011_client_admin
Revises: 0010_legacy_org
Create Date: 2026-12-07 16:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0011_client_admin'
down_revision = '0010_legacy_org'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False,
                                      server_default='active'))
        batch_op.add_column(sa.Column('secret_previous_hash', sa.String(length=128),
                                      nullable=True))
        batch_op.add_column(sa.Column('secret_previous_until', sa.Float(), nullable=True))


def downgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('secret_previous_until')
        batch_op.drop_column('secret_previous_hash')
        batch_op.drop_column('status')
