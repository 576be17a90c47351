"""admin roles and person merge records

Revision ID: 0009_admin
Revises: 0008_channels
Create Date: 2026-11-22 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0009_admin'
down_revision = '0008_channels'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('admin_role',
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('granted_by', sa.String(length=64), nullable=False),
    sa.Column('granted_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('person_id', 'role')
    )
    op.create_table('merge_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survivor_id', sa.String(length=32), nullable=False),
    sa.Column('absorbed_id', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('forced', sa.Boolean(), nullable=False),
    sa.Column('moved', sa.JSON(), nullable=False),
    sa.Column('absorbed_status', sa.String(length=16), nullable=False),
    sa.Column('absorbed_password_hash', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('undone_at', sa.Float(), nullable=True),
    sa.Column('undone_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('merge_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merge_record_absorbed_id'), ['absorbed_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_merge_record_survivor_id'), ['survivor_id'], unique=False)


def downgrade():
    with op.batch_alter_table('merge_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merge_record_survivor_id'))
        batch_op.drop_index(batch_op.f('ix_merge_record_absorbed_id'))
    op.drop_table('merge_record')
    op.drop_table('admin_role')
