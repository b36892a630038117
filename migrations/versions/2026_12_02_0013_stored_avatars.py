"""stored avatars

Avatars become files in storage: `avatar_key` names where the renditions of a user's
avatar are stored, `avatar_source` holds what waits to become the avatar (an image URL
being fetched, or an inline image), `avatar_error` why the last URL could not be taken,
`avatar_fetch_id` which fetch of it is wanted.
Inline (data URL) avatars move out of `avatar` into `avatar_source` here, so that no
response carries image bytes from now on; a job of the users domain then stores them
and sets `avatar` to their public URL. Downgrading puts inline images that were not
moved yet back; stored ones keep their URL.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 03:31:01.255453
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("avatar_source IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("avatar_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("avatar_source", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("avatar_error", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("avatar_fetch_id", sa.String(length=32), nullable=True))
        batch_op.create_index(
            "ix_users_avatar_pending",
            ["id"],
            unique=False,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )
    op.execute("UPDATE users SET avatar_source = avatar, avatar = NULL WHERE avatar LIKE 'data:%'")


def downgrade() -> None:
    op.execute(
        "UPDATE users SET avatar = avatar_source "
        "WHERE avatar_source LIKE 'data:%' AND avatar IS NULL"
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_users_avatar_pending", sqlite_where=PENDING, postgresql_where=PENDING
        )
        batch_op.drop_column("avatar_fetch_id")
        batch_op.drop_column("avatar_error")
        batch_op.drop_column("avatar_source")
        batch_op.drop_column("avatar_key")
