"""claims released by name (OIDC claims parameter): remembered consent, refresh tokens

Revision ID: 0016_requested_claims
Revises: 0015_data_key
Create Date: 2026-12-08 00:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0016_requested_claims'
down_revision = '0015_data_key'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.Text(), nullable=False, server_default=''))
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_column('claims')
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.drop_column('claims')
