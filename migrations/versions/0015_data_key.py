"""data keys wrapped by the key-encryption key (envelope encryption, KEK rotation)

Revision ID: 0015_data_key
Revises: 0014_token_resource
Create Date: 2026-12-07 17:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0015_data_key'
down_revision = '0014_token_resource'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'data_key',
        sa.Column('purpose', sa.String(length=32), nullable=False),
        sa.Column('wrapped', sa.Text(), nullable=False),
        sa.Column('kek_id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('wrapped_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('purpose'),
    )
    with op.batch_alter_table('data_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_key_kek_id'), ['kek_id'], unique=False)


def downgrade():
    with op.batch_alter_table('data_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_key_kek_id'))
    op.drop_table('data_key')
