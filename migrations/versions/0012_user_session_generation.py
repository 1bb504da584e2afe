"""users.session_generation: a password reset or deactivation ends browser sessions

A login session remembers the user's generation; a reset or deactivation increments it,
and a session holding an older one is logged out on its next request.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 13:10:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
