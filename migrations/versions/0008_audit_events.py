"""audit_events: who saw or changed what, and when

One row per audited action (case views and lists, exports, logins, queue actions, form
publishing, app users). Ids and codes only, never personal values; no foreign keys, so the
trail outlives what it mentions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 08:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('app_user_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('object_type', sa.String(length=32), nullable=True),
        sa.Column('object_id', sa.String(length=64), nullable=True),
        sa.Column('mission', sa.String(length=16), nullable=True),
        sa.Column('address', sa.String(length=45), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.CheckConstraint("action <> ''", name=op.f('ck_audit_events_action_not_empty')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_events_object', ['object_type', 'object_id'], unique=False)
        batch_op.create_index('ix_audit_events_user', ['user_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_action'), ['action'], unique=False)


def downgrade():
    op.drop_table('audit_events')
