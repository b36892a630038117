"""analytics

Usage events (with the instruments of created patterns) and active days, kept for
ANALYTICS_EVENT_RETENTION; the `analytics` rollups (metric, period, period start, key,
value), kept for ever; the trending ranges of patterns; the rollup's state and lock.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 19:03:39.879208
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import beatmachine.core.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics",
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "metric", "period", "period_start", "key", name=op.f("pk_analytics")
        ),
    )
    op.create_table(
        "analytics_rollup_state",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("watermark", beatmachine.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("today", sa.Date(), nullable=True),
        sa.Column("locked_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_rollup_state")),
    )
    op.create_table(
        "analytics_active_days",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("cohort", sa.Date(), nullable=False),
        sa.Column("recorded_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_analytics_active_days_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_analytics_active_days")),
    )
    with op.batch_alter_table("analytics_active_days", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_active_days_day", ["day"], unique=False)
        batch_op.create_index("ix_analytics_active_days_recorded", ["recorded_at"], unique=False)

    op.create_table(
        "analytics_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("occurred_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("pattern_id", sa.String(length=32), nullable=True),
        sa.Column("flavor", sa.String(length=50), nullable=True),
        sa.Column("bpm", sa.Integer(), nullable=True),
        sa.Column("key_note", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_analytics_events_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_events")),
    )
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_events_day_kind", ["day", "kind"], unique=False)
        batch_op.create_index("ix_analytics_events_recorded", ["recorded_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_analytics_events_user_id"), ["user_id"], unique=False)

    op.create_table(
        "analytics_event_instruments",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instrument", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["analytics_events.id"],
            name=op.f("fk_analytics_event_instruments_event_id_analytics_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "event_id", "instrument", name=op.f("pk_analytics_event_instruments")
        ),
    )
    with op.batch_alter_table("analytics_event_instruments", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_event_instruments_day", ["day"], unique=False)

    op.create_table(
        "analytics_trending",
        sa.Column("time_range", sa.String(length=8), nullable=False),
        sa.Column("pattern_id", sa.String(length=32), nullable=False),
        sa.Column("plays", sa.BigInteger(), nullable=False),
        sa.Column("likes", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pattern_id"],
            ["patterns.id"],
            name=op.f("fk_analytics_trending_pattern_id_patterns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("time_range", "pattern_id", name=op.f("pk_analytics_trending")),
    )
    with op.batch_alter_table("analytics_trending", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_trending_range_score", ["time_range", "score", "pattern_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("analytics_trending", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_trending_range_score")

    op.drop_table("analytics_trending")
    with op.batch_alter_table("analytics_event_instruments", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_event_instruments_day")

    op.drop_table("analytics_event_instruments")
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_events_user_id"))
        batch_op.drop_index("ix_analytics_events_recorded")
        batch_op.drop_index("ix_analytics_events_day_kind")

    op.drop_table("analytics_events")
    with op.batch_alter_table("analytics_active_days", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_active_days_recorded")
        batch_op.drop_index("ix_analytics_active_days_day")

    op.drop_table("analytics_active_days")
    op.drop_table("analytics_rollup_state")
    op.drop_table("analytics")
