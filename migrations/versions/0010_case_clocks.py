"""sync, part 4: each case's clocks; a conflict's details in the review queue

sync_case_clocks holds per case the hybrid logical clock of each field's last write and,
per mission, the newest clock taken in (a version vector of clocks): what tells a
concurrent edit from a newer one. sync_reviews.details names a conflict's fields, both
missions and both clocks (never a value), as does its reason (now up to 255).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 11:00:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sync_case_clocks",
        sa.Column("case_uuid", sa.String(length=36), nullable=False),
        sa.Column("seen", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("held", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("case_uuid", name=op.f("pk_sync_case_clocks")),
    )
    with op.batch_alter_table("sync_reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))
        batch_op.alter_column(
            "reason",
            existing_type=sa.String(length=64),
            type_=sa.String(length=255),
            existing_nullable=True,
        )


def downgrade():
    with op.batch_alter_table("sync_reviews", schema=None) as batch_op:
        batch_op.alter_column(
            "reason",
            existing_type=sa.String(length=255),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
        batch_op.drop_column("details")
    op.drop_table("sync_case_clocks")
