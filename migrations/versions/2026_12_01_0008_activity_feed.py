"""activity feed

Activities (what people did) and the feeds of their followers they are written into.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:56:06.913521
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import beatmachine.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=32), nullable=False),
        sa.Column("pattern_id", sa.String(length=32), nullable=True),
        sa.Column("comment_id", sa.String(length=32), nullable=True),
        sa.Column("subject_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_activities_actor_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_activities_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pattern_id"],
            ["patterns.id"],
            name=op.f("fk_activities_pattern_id_patterns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["users.id"],
            name=op.f("fk_activities_subject_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_activities_actor_created", ["actor_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_activities_comment_id"), ["comment_id"], unique=False)
        batch_op.create_index("ix_activities_created_at", ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_activities_pattern_id"), ["pattern_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_activities_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "feed_entries",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activity_id", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_feed_entries_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_feed_entries_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "created_at", "activity_id", name=op.f("pk_feed_entries")
        ),
    )
    with op.batch_alter_table("feed_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feed_entries_activity_id"), ["activity_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("feed_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_entries_activity_id"))

    op.drop_table("feed_entries")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_subject_id"))
        batch_op.drop_index(batch_op.f("ix_activities_pattern_id"))
        batch_op.drop_index("ix_activities_created_at")
        batch_op.drop_index(batch_op.f("ix_activities_comment_id"))
        batch_op.drop_index("ix_activities_actor_created")

    op.drop_table("activities")
