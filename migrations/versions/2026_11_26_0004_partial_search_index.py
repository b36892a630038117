"""partial search index

The public search never looks at private or deleted patterns, so its GIN index need not
hold them: partial, like the listing indexes. PostgreSQL only (SQLite searches FTS5).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 02:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_patterns_search_vector"


def _replace_index(where: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.execute(f"CREATE INDEX {INDEX} ON patterns USING gin (search_vector){where}")


def upgrade() -> None:
    _replace_index(" WHERE is_public AND deleted_at IS NULL")


def downgrade() -> None:
    _replace_index("")
