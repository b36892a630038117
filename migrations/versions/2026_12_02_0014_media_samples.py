"""media samples

Users' audio samples: what was uploaded (its name, detected kind, size and decoded
duration), where its files are stored, the conversion's status and, once ready, the
working form's length, loudness, true peak and gain. Unique names per owner; the
owner's samples are listed newest first.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 04:34:20.980097
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import beatmachine.core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_samples",
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("original_filename", sa.String(length=255), nullable=False),
        sa.Column("original_format", sa.String(length=10), nullable=False),
        sa.Column("original_codec", sa.String(length=20), nullable=False),
        sa.Column("original_bytes", sa.BigInteger(), nullable=False),
        sa.Column("original_duration", sa.Float(), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("conversion_attempts", sa.Integer(), nullable=False),
        sa.Column("length_samples", sa.Integer(), nullable=True),
        sa.Column("loudness_lufs", sa.Float(), nullable=True),
        sa.Column("true_peak_dbtp", sa.Float(), nullable=True),
        sa.Column("gain_db", sa.Float(), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", beatmachine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_media_samples_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_samples")),
        sa.UniqueConstraint("owner_id", "name", name="uq_media_samples_owner_name"),
    )
    with op.batch_alter_table("media_samples", schema=None) as batch_op:
        batch_op.create_index(
            "ix_media_samples_owner_created", ["owner_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("media_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_media_samples_owner_created")

    op.drop_table("media_samples")
