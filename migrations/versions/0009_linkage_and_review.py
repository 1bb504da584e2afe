"""record linkage: each person's encoding and its indexed keys; the sync review queue

persons.needs_linkage flags a person whose encoding is missing or out of date (every
existing person, at first: `casebridge sync encode` makes them). person_linkage holds the
encodings, person_linkage_keys their blocking keys, exact tokens and spellings (one
indexed SELECT finds an incoming person's candidates). sync_reviews is the review queue:
ids, scores and rule names, never personal values.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_linkage', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_index(batch_op.f('ix_persons_needs_linkage'), ['needs_linkage'], unique=False)
    op.create_table('person_linkage',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('encoding', sa.JSON(), nullable=False),
    sa.CheckConstraint("source IN ('local', 'peer')", name=op.f('ck_person_linkage_source_known')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_person_linkage_person_id_persons'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_person_linkage'))
    )
    op.create_table('person_linkage_keys',
    sa.Column('key', sa.LargeBinary(length=16), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_person_linkage_keys_person_id_persons'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key', 'person_id', name=op.f('pk_person_linkage_keys'))
    )
    with op.batch_alter_table('person_linkage_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_linkage_keys_person_id'), ['person_id'], unique=False)
    op.create_table('sync_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('state', sa.String(length=8), server_default='open', nullable=False),
    sa.Column('case_uuid', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('candidates', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('chosen_person_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("(state = 'open') = (decided_at IS NULL)", name=op.f('ck_sync_reviews_decided_when_closed')),
    sa.CheckConstraint("kind IN ('possible_duplicate', 'conflict', 'transfer', 'referral')", name=op.f('ck_sync_reviews_kind_known')),
    sa.CheckConstraint("state IN ('open', 'accepted', 'rejected')", name=op.f('ck_sync_reviews_state_known')),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_sync_reviews_decided_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_reviews'))
    )
    with op.batch_alter_table('sync_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_reviews_case_uuid'), ['case_uuid'], unique=False)
        batch_op.create_index('ix_sync_reviews_state_kind', ['state', 'kind'], unique=False)


def downgrade():
    op.drop_table('sync_reviews')
    op.drop_table('person_linkage_keys')
    op.drop_table('person_linkage')
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_persons_needs_linkage'))
        batch_op.drop_column('needs_linkage')
