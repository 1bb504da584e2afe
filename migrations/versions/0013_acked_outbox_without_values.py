"""sync_outbox: an acknowledged change keeps only the names of what it sent

Delivery now replaces the payload of an acknowledged change by the names of its fields and
records (sync.delivery.what_was_sent): the peer has the values, and a second copy kept for
ever was more personal data to lose. This does the same to the changes acknowledged
before. Not reversible: the values are gone (downgrade leaves the rows as they are).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 16:15:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

outbox = sa.table(
    "sync_outbox",
    sa.column("id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("payload", sa.JSON),
)


def what_was_sent(payload: dict) -> dict:
    """As sync.delivery.what_was_sent on the day of this migration (kept here, so that a
    later change there does not change what this migration did)."""
    case = payload.get("case") or {}
    return {
        "sent": {
            "fields": sorted(case.get("fields") or {}),
            "records": [
                {"dataset": record.get("dataset"), "fields": sorted(record.get("fields") or {})}
                for record in payload.get("records") or []
            ],
            "parts": sorted(set(payload) - {"case", "records"}),
        }
    }


def upgrade():
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(outbox.c.id, outbox.c.payload)
            .where(outbox.c.state == "acked", outbox.c.id > last_id)
            .order_by(outbox.c.id)
            .limit(1000)
        ).all()
        if not rows:
            return
        for row_id, payload in rows:
            if isinstance(payload, dict) and "sent" not in payload:
                connection.execute(
                    outbox.update()
                    .where(outbox.c.id == row_id)
                    .values(payload=what_was_sent(payload))
                )
        last_id = rows[-1].id


def downgrade():
    pass  # the values are gone; the summaries stay
