"""outbox and job queue

The transactional outbox (domain events and jobs written with the change they follow),
which listener has handled which event, the database job queue of the embedded set-up,
the leases of periodic jobs without Redis, and jobs that failed for good.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 08:54:49.826291
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import beatmachine.core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_deliveries",
        sa.Column("listener", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("delivered_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("listener", "event_id", name=op.f("pk_event_deliveries")),
    )
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_event_deliveries_delivered_at", ["delivered_at"], unique=False)

    op.create_table(
        "failed_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "first_failed_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("failed_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retried_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_jobs")),
    )
    with op.batch_alter_table("failed_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_failed_jobs_status_failed_at", ["status", "failed_at"], unique=False
        )

    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("period", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )
    op.create_table(
        "job_queue",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("available_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", beatmachine.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("created_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_queue")),
    )
    with op.batch_alter_table("job_queue", schema=None) as batch_op:
        batch_op.create_index("ix_job_queue_available_at", ["available_at", "id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", beatmachine.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("relayed_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_pending",
            ["created_at", "id"],
            unique=False,
            postgresql_where=sa.text("relayed_at IS NULL"),
            sqlite_where=sa.text("relayed_at IS NULL"),
        )
        batch_op.create_index("ix_outbox_relayed_at", ["relayed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_relayed_at")
        batch_op.drop_index(
            "ix_outbox_pending",
            postgresql_where=sa.text("relayed_at IS NULL"),
            sqlite_where=sa.text("relayed_at IS NULL"),
        )

    op.drop_table("outbox")
    with op.batch_alter_table("job_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_job_queue_available_at")

    op.drop_table("job_queue")
    op.drop_table("job_leases")
    with op.batch_alter_table("failed_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_failed_jobs_status_failed_at")

    op.drop_table("failed_jobs")
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_event_deliveries_delivered_at")

    op.drop_table("event_deliveries")
