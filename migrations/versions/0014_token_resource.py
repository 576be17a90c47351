"""refresh tokens: the resource indicators (RFC 8707) their grant was limited to

Revision ID: 0014_token_resource
Revises: 0013_token_binding
Create Date: 2026-12-07 16:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0014_token_resource'
down_revision = '0013_token_binding'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resource', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_column('resource')
