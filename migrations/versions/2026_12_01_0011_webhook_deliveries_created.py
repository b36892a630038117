"""webhook deliveries by age

An index of webhook deliveries by creation time, for the hourly removal of those past
WEBHOOK_DELIVERY_RETENTION.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 18:51:48.397298
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_created")
