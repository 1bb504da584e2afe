"""sync, part 2: versions made by changes from linked missions; the newest version applied
per case and origin mission

case_versions.sync_change_id names the received change that made a version (a version
comes from a submission or from a change, never both). sync_applied_versions orders the
changes of each origin mission: an older one arriving late is not applied.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 08:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sync_applied_versions',
    sa.Column('case_uuid', sa.String(length=36), nullable=False),
    sa.Column('origin_mission', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('change_id', sa.String(length=36), nullable=False),
    sa.Column('applied_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("kind IN ('upsert', 'tombstone')", name=op.f('ck_sync_applied_versions_kind_known')),
    sa.PrimaryKeyConstraint('case_uuid', 'origin_mission', name=op.f('pk_sync_applied_versions'))
    )
    with op.batch_alter_table('case_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sync_change_id', sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_case_versions_sync_change_id'), ['sync_change_id'])


def downgrade():
    with op.batch_alter_table('case_versions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_case_versions_sync_change_id'), type_='unique')
        batch_op.drop_column('sync_change_id')
    op.drop_table('sync_applied_versions')
