"""refresh tokens: the key or certificate they are bound to (DPoP cnf.jkt, mTLS x5t#S256)

Revision ID: 0013_token_binding
Revises: 0012_account_closure
Create Date: 2026-12-07 16:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0013_token_binding'
down_revision = '0012_account_closure'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cnf', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.drop_column('cnf')
