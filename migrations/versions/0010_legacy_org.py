"""legacy accounts of organisations; organisations found by their old organisation code

Revision ID: 0010_legacy_org
Revises: 0009_admin
Create Date: 2026-11-22 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010_legacy_org'
down_revision = '0009_admin'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('legacy_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('org_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_legacy_account_org_id'), ['org_id'], unique=False)
    # The importer finds an organisation by the 9-character organisation code its
    # credit code embeds (positions 9-17); SQLite and PostgreSQL both index expressions.
    op.create_index('ix_organisation_org_code', 'organisation',
                    [sa.text('substr(uscc, 9, 9)')], unique=False)


def downgrade():
    op.drop_index('ix_organisation_org_code', table_name='organisation')
    with op.batch_alter_table('legacy_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legacy_account_org_id'))
        batch_op.drop_column('org_id')
