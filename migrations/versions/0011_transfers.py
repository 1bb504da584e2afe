"""sync, part 5: transfers and referrals between missions

sync_transfers holds a case's transfers (ownership moves when the recipient accepts) and
referrals (shared, ownership stays), one row at each end keyed by the transfer's uuid.
The outbox and inbox take their messages as new change kinds; a review item may be
revoked (its owner withdrew the transfer or referral).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 13:00:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('upsert', 'tombstone')"
NEW_KINDS = (
    "kind IN ('upsert', 'tombstone', 'transfer_request', 'transfer_accept', "
    "'transfer_reject', 'transfer_revoke', 'transfer_case')"
)
OLD_REVIEW_STATES = "state IN ('open', 'accepted', 'rejected')"
NEW_REVIEW_STATES = "state IN ('open', 'accepted', 'rejected', 'revoked')"


def _replace_check(table: str, name: str, condition: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
        batch_op.create_check_constraint(op.f(f"ck_{table}_{name}"), condition)


def upgrade():
    op.create_table(
        "sync_transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("case_uuid", sa.String(length=36), nullable=False),
        sa.Column("from_mission", sa.String(length=16), nullable=False),
        sa.Column("to_mission", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=8), server_default="pending", nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False
        ),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "(state = 'pending') = (decided_at IS NULL)",
            name=op.f("ck_sync_transfers_decided_when_closed"),
        ),
        sa.CheckConstraint(
            "kind IN ('transfer', 'referral')", name=op.f("ck_sync_transfers_kind_known")
        ),
        sa.CheckConstraint(
            "from_mission <> to_mission", name=op.f("ck_sync_transfers_not_to_itself")
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'accepted', 'rejected', 'revoked')",
            name=op.f("ck_sync_transfers_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_sync_transfers_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_sync_transfers_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_transfers")),
        sa.UniqueConstraint("uuid", name=op.f("uq_sync_transfers_uuid")),
    )
    with op.batch_alter_table("sync_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_sync_transfers_case_state", ["case_uuid", "state"], unique=False)
    _replace_check("sync_outbox", "kind_known", NEW_KINDS)
    _replace_check("sync_inbox_changes", "kind_known", NEW_KINDS)
    _replace_check("sync_reviews", "state_known", NEW_REVIEW_STATES)


def downgrade():
    _replace_check("sync_reviews", "state_known", OLD_REVIEW_STATES)
    _replace_check("sync_inbox_changes", "kind_known", OLD_KINDS)
    _replace_check("sync_outbox", "kind_known", OLD_KINDS)
    with op.batch_alter_table("sync_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_transfers_case_state")
    op.drop_table("sync_transfers")
