"""notifications

What happened to people's work or to them, and the e-mails scheduled to tell them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:12:42.727640
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import beatmachine.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_digests",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("due_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_digests_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_digests")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=32), nullable=False),
        sa.Column("pattern_id", sa.String(length=32), nullable=True),
        sa.Column("comment_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("email_pending", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_notifications_actor_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_notifications_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pattern_id"],
            ["patterns.id"],
            name=op.f("fk_notifications_pattern_id_patterns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notifications_comment_id"), ["comment_id"], unique=False
        )
        batch_op.create_index(
            "ix_notifications_email_pending",
            ["user_id"],
            unique=False,
            postgresql_where=sa.text("email_pending"),
            sqlite_where=sa.text("email_pending"),
        )
        batch_op.create_index(
            batch_op.f("ix_notifications_pattern_id"), ["pattern_id"], unique=False
        )
        batch_op.create_index(
            "ix_notifications_unread",
            ["user_id"],
            unique=False,
            postgresql_where=sa.text("read_at IS NULL"),
            sqlite_where=sa.text("read_at IS NULL"),
        )
        batch_op.create_index(
            "ix_notifications_user_created", ["user_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_user_created")
        batch_op.drop_index(
            "ix_notifications_unread",
            postgresql_where=sa.text("read_at IS NULL"),
            sqlite_where=sa.text("read_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_notifications_pattern_id"))
        batch_op.drop_index(
            "ix_notifications_email_pending",
            postgresql_where=sa.text("email_pending"),
            sqlite_where=sa.text("email_pending"),
        )
        batch_op.drop_index(batch_op.f("ix_notifications_comment_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_actor_id"))

    op.drop_table("notifications")
    op.drop_table("notification_digests")
