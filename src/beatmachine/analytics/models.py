"""Tables of the analytics domain: the raw usage events (kept for a while), the rollups
(kept for ever, no personal data) and the rollup's own bookkeeping."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core.db import Base

# A 64-bit counter that is also SQLite's rowid (so it increments there too).
BigId = BigInteger().with_variant(Integer, "sqlite")


class UsageEvent(Base):
    """Something a person did that the reports count: a pattern created or saved (with
    its settings), played or liked, an account registered. Removed after
    `ANALYTICS_EVENT_RETENTION`, and with the account that did it."""

    __tablename__ = "analytics_events"
    __table_args__ = (
        # A day's events of one kind: what the rollup of that day reads.
        Index("ix_analytics_events_day_kind", "day", "kind"),
        # Events recorded since the last rollup: the days to roll up again, and the live
        # part of an answer.
        Index("ix_analytics_events_recorded", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    # The UTC day it happened on (a late event keeps the day it happened).
    day: Mapped[date] = mapped_column(Date)
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    user_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    pattern_id: Mapped[str | None] = mapped_column(String(32))
    flavor: Mapped[str | None] = mapped_column(String(50))
    bpm: Mapped[int | None] = mapped_column(Integer)
    key_note: Mapped[int | None] = mapped_column(Integer)


class UsageEventInstrument(Base):
    """An instrument a created or saved pattern switches on (one row per instrument)."""

    __tablename__ = "analytics_event_instruments"
    __table_args__ = (Index("ix_analytics_event_instruments_day", "day"),)

    event_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("analytics_events.id", ondelete="CASCADE"), primary_key=True
    )
    instrument: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date)


class ActiveDay(Base):
    """An account was used on a day: one row per account and day, whatever the number of
    sign-ins. `cohort` is the Monday of the week it signed up in."""

    __tablename__ = "analytics_active_days"
    __table_args__ = (
        Index("ix_analytics_active_days_day", "day"),
        Index("ix_analytics_active_days_recorded", "recorded_at"),
    )

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    cohort: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime]


class Rollup(Base):
    """One number of the reports: `metric` (`plays`, `tempo`, …) for `key` (an
    instrument, `Salsa:180`, or empty) over one day, week (from Monday), month or year.
    Kept for ever; no personal data."""

    __tablename__ = "analytics"

    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True, default="")
    value: Mapped[int] = mapped_column(BigInteger)


class TrendingPattern(Base):
    """A pattern's plays and likes inside one time range (the last day, 7, 30 or 365
    days, or all time) and its trending score, kept up to date by the rollup."""

    __tablename__ = "analytics_trending"
    __table_args__ = (
        Index("ix_analytics_trending_range_score", "time_range", "score", "pattern_id"),
    )

    time_range: Mapped[str] = mapped_column(String(8), primary_key=True)
    pattern_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("patterns.id", ondelete="CASCADE"), primary_key=True
    )
    plays: Mapped[int] = mapped_column(BigInteger)
    likes: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float] = mapped_column(Float)


class RollupState(Base):
    """Where the rollup stands: everything recorded up to `watermark` is in the rollups,
    and the trending ranges end on `today`. Its one row is also the rollup's lock."""

    __tablename__ = "analytics_rollup_state"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    watermark: Mapped[datetime | None]
    today: Mapped[date | None] = mapped_column(Date)
    locked_at: Mapped[datetime | None]
