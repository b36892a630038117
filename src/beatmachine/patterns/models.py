"""Tables of the patterns domain: saved patterns, their version history, likes and
unlisted share links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core.db import Base, IdMixin, TimestampMixin
from beatmachine.core.ids import utcnow


class Pattern(IdMixin, TimestampMixin, Base):
    __tablename__ = "patterns"
    __table_args__ = (
        # The public listing: newest, most played, most liked; soft-deleted rows excluded.
        Index(
            "ix_patterns_public_recent",
            "created_at",
            "id",
            postgresql_where=text("is_public AND deleted_at IS NULL"),
            sqlite_where=text("is_public = 1 AND deleted_at IS NULL"),
        ),
        Index(
            "ix_patterns_public_plays",
            "plays_count",
            "id",
            postgresql_where=text("is_public AND deleted_at IS NULL"),
            sqlite_where=text("is_public = 1 AND deleted_at IS NULL"),
        ),
        Index(
            "ix_patterns_public_likes",
            "likes_count",
            "id",
            postgresql_where=text("is_public AND deleted_at IS NULL"),
            sqlite_where=text("is_public = 1 AND deleted_at IS NULL"),
        ),
        Index(
            "ix_patterns_public_flavor_recent",
            "flavor",
            "created_at",
            postgresql_where=text("is_public AND deleted_at IS NULL"),
            sqlite_where=text("is_public = 1 AND deleted_at IS NULL"),
        ),
        Index("ix_patterns_user_recent", "user_id", "created_at"),
        Index("ix_patterns_deleted_at", "deleted_at"),
    )

    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    flavor: Mapped[str] = mapped_column(String(50))
    bpm: Mapped[int] = mapped_column(Integer)
    key_note: Mapped[int] = mapped_column(Integer)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    configuration: Mapped[dict[str, Any]] = mapped_column(JSON)
    thumbnail: Mapped[str | None] = mapped_column(String(2048))
    machine_id: Mapped[str] = mapped_column(String(50))
    machine_version: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    plays_count: Mapped[int] = mapped_column(Integer, default=0)
    likes_count: Mapped[int] = mapped_column(Integer, default=0)
    comments_count: Mapped[int] = mapped_column(Integer, default=0)
    forks_count: Mapped[int] = mapped_column(Integer, default=0)
    original_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("patterns.id", ondelete="SET NULL"), index=True
    )
    deleted_at: Mapped[datetime | None]


class PatternVersion(IdMixin, Base):
    """The state of a pattern before one of its updates (or restores)."""

    __tablename__ = "pattern_versions"
    __table_args__ = (
        Index("uq_pattern_versions_pattern_version", "pattern_id", "version", unique=True),
    )

    pattern_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("patterns.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    author_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PatternLike(Base):
    __tablename__ = "pattern_likes"

    pattern_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("patterns.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShareLink(IdMixin, Base):
    """An unlisted link that opens a private pattern read-only, without an account."""

    __tablename__ = "pattern_share_links"

    pattern_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("patterns.id", ondelete="CASCADE"), index=True
    )
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


# Full-text search objects are made by hand in the migration, per dialect (PostgreSQL: a
# generated tsvector column with a GIN index; SQLite: an FTS5 table kept by triggers).
SEARCH_OBJECT_PREFIXES = ("patterns_fts", "search_vector", "ix_patterns_search")


def is_search_object(name: str | None) -> bool:
    return bool(name) and str(name).startswith(SEARCH_OBJECT_PREFIXES)
