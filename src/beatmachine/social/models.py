"""Tables of the social domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, text
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


class Activity(Base):
    """Something a person did that their followers see in their feeds: created or liked a
    pattern, followed someone, commented. Whether it is shown is decided when a feed is
    read (the pattern still public, the like or follow still there), so a change of those
    takes effect at once in every feed."""

    __tablename__ = "activities"
    __table_args__ = (
        # A person's recent activities (brought into a new follower's feed).
        Index("ix_activities_actor_created", "actor_id", "created_at", "id"),
        Index("ix_activities_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    pattern_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("patterns.id", ondelete="CASCADE"), index=True
    )
    comment_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    # The person followed, for `user_followed`.
    subject_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # When it happened (the event's time), which orders the feeds.
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedEntry(Base):
    """An activity written into one follower's feed (fan-out on write): reading a feed is
    one range of this table's primary key, however many people the reader follows."""

    __tablename__ = "feed_entries"

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(primary_key=True)
    activity_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # Copied from the activity, so that the feed checks the follow without reading it.
    actor_id: Mapped[str] = mapped_column(String(32))


class Notification(Base):
    """Something that happened to a person's work or to them: a like or a comment on
    their pattern, a reply to their comment, a new follower."""

    __tablename__ = "notifications"
    __table_args__ = (
        # A person's notifications, newest first.
        Index("ix_notifications_user_created", "user_id", "created_at", "id"),
        # Their unread count, from the unread ones alone.
        Index(
            "ix_notifications_unread",
            "user_id",
            postgresql_where=text("read_at IS NULL"),
            sqlite_where=text("read_at IS NULL"),
        ),
        # Those still to be told by e-mail (few at any time).
        Index(
            "ix_notifications_email_pending",
            "user_id",
            postgresql_where=text("email_pending"),
            sqlite_where=text("email_pending"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    pattern_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("patterns.id", ondelete="CASCADE"), index=True
    )
    comment_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # Waiting for the next e-mail of its kind (the recipient asked for e-mails of it).
    email_pending: Mapped[bool] = mapped_column(Boolean, default=False)


class NotificationDigest(Base):
    """An e-mail of notifications due for a person: one row while one is scheduled, so a
    burst of notifications schedules one e-mail, not one each."""

    __tablename__ = "notification_digests"

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    due_at: Mapped[datetime]
