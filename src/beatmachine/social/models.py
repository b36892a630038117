"""Tables of the social domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core.db import Base, IdMixin, TimestampMixin
from beatmachine.core.ids import utcnow


class Comment(IdMixin, TimestampMixin, Base):
    """A comment on a pattern, or a reply in its thread (`parent_id`, one level deep)."""

    __tablename__ = "comments"
    __table_args__ = (
        # The pattern's comments in order of writing, either way round.
        Index("ix_comments_pattern_created", "pattern_id", "created_at", "id"),
    )

    pattern_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("patterns.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The thread's first comment; a reply to a reply names the same one.
    parent_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    # Set by an edit of the text: the comment shows it was edited, and when.
    edited_at: Mapped[datetime | None]


class Follow(Base):
    """`follower_id` follows `followee_id`: one row per pair, so following is idempotent
    and counts are exact."""

    __tablename__ = "follows"
    __table_args__ = (
        # Someone's followers, newest first; and whom someone follows, newest first.
        Index("ix_follows_followee_created", "followee_id", "created_at", "follower_id"),
        Index("ix_follows_follower_created", "follower_id", "created_at", "followee_id"),
    )

    follower_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    followee_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
