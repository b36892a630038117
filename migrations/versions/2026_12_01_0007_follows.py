"""follows

Who follows whom: one row per pair, listed newest first from either side.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:32:38.398194
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import beatmachine.core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("follower_id", sa.String(length=32), nullable=False),
        sa.Column("followee_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["followee_id"],
            ["users.id"],
            name=op.f("fk_follows_followee_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["users.id"],
            name=op.f("fk_follows_follower_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("follower_id", "followee_id", name=op.f("pk_follows")),
    )
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.create_index(
            "ix_follows_followee_created",
            ["followee_id", "created_at", "follower_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_follows_follower_created",
            ["follower_id", "created_at", "followee_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.drop_index("ix_follows_follower_created")
        batch_op.drop_index("ix_follows_followee_created")

    op.drop_table("follows")
