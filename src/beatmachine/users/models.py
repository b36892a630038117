"""Tables of the users domain: accounts and their preferences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from beatmachine.core.db import Base, IdMixin, TimestampMixin


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    # None for accounts that only ever signed in through an OAuth provider.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100))
    bio: Mapped[str | None] = mapped_column(String(500))
    # The public URL of the avatar's default size (or, set before avatars were stored
    # here, the image URL the owner gave).
    avatar: Mapped[str | None] = mapped_column(Text)
    # Where the avatar's renditions are stored: `avatars/<user>/<token>` (+ `/<size>.webp`).
    avatar_key: Mapped[str | None] = mapped_column(String(200))
    # What is waiting to become the avatar: an image URL to fetch, or an inline image
    # (data URL) from before avatars were stored; `avatar_error` says why the last URL
    # could not be taken.
    avatar_source: Mapped[str | None] = mapped_column(Text)
    avatar_error: Mapped[str | None] = mapped_column(String(300))
    # Names the fetch of the URL in `avatar_source` that is wanted now: the job of an
    # earlier request of the same URL finds another id and leaves the profile alone.
    avatar_fetch_id: Mapped[str | None] = mapped_column(String(32))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    email_verified_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    # Set when the owner asked for deletion; the account is removed once it passes.
    deletion_scheduled_at: Mapped[datetime | None] = mapped_column(index=True)

    __table_args__ = (
        Index(
            "ix_users_avatar_pending",
            "id",
            sqlite_where=text("avatar_source IS NOT NULL"),
            postgresql_where=text("avatar_source IS NOT NULL"),
        ),
    )

    preferences: Mapped[UserPreferences] = relationship(
        back_populates="user", lazy="joined", cascade="all, delete-orphan", uselist=False
    )


class UserPreferences(Base):
    __tablename__ = "user_preferences"

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    default_bpm: Mapped[int] = mapped_column(Integer, default=120)
    default_key: Mapped[int] = mapped_column(Integer, default=0)
    default_flavor: Mapped[str] = mapped_column(String(50), default="Salsa")
    use_glass_ui: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_play: Mapped[bool] = mapped_column(Boolean, default=False)
    show_beat_numbers: Mapped[bool] = mapped_column(Boolean, default=True)
    default_volume: Mapped[float] = mapped_column(Float, default=0.8)
    theme: Mapped[str] = mapped_column(String(10), default="auto")
    language: Mapped[str] = mapped_column(String(16), default="en")
    notify_likes: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_comments: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_follows: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_newsletter: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship(back_populates="preferences")
