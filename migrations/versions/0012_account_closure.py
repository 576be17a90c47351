"""accounts may be closed by their owner after a cooling-off period

Revision ID: 0012_account_closure
Revises: 0011_client_admin
Create Date: 2026-12-07 16:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0012_account_closure'
down_revision = '0011_client_admin'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('close_requested_at', sa.Float(), nullable=True))


def downgrade():
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('close_requested_at')
