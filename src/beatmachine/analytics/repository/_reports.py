"""The reports' reads: sums of rollups over a range's periods, and the live part (what
was recorded after the rollup's watermark)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics.metrics import Kind, Metric
from beatmachine.analytics.models import (
    ActiveDay,
    Rollup,
    RollupState,
    TrendingPattern,
    UsageEvent,
    UsageEventInstrument,
)
from beatmachine.analytics.ranges import LIKE_WEIGHT, Period, Tile
from beatmachine.analytics.repository._rollup import STATE
from beatmachine.patterns.models import Pattern
from beatmachine.users.models import User


async def rollup_state(session: AsyncSession) -> RollupState | None:
    """The rollup's watermark and the day its trending ranges end on (None: never run)."""
    return await session.get(RollupState, STATE)


def _covering(tiles: Sequence[Tile]) -> ColumnElement[bool]:
    by_period: dict[Period, list[date]] = {}
    for tile in tiles:
        by_period.setdefault(tile.period, []).append(tile.start)
    if not by_period:
        return false()
    return or_(
        *(
            and_(Rollup.period == period.value, Rollup.period_start.in_(starts))
            for period, starts in by_period.items()
        )
    )


async def summed_by_key(
    session: AsyncSession, metric: Metric, tiles: Sequence[Tile]
) -> dict[str, int]:
    """`metric` per key, summed over the tiles."""
    rows = await session.execute(
        select(Rollup.key, func.sum(Rollup.value))
        .where(Rollup.metric == metric.value, _covering(tiles))
        .group_by(Rollup.key)
    )
    return {key: int(total) for key, total in rows.all()}


async def series(
    session: AsyncSession, metric: Metric, period: Period, first: date, last: date, key: str = ""
) -> dict[date, int]:
    """`metric` (of `key`) per `period` whose start is from `first` to `last`."""
    rows = await session.execute(
        select(Rollup.period_start, Rollup.value).where(
            Rollup.metric == metric.value,
            Rollup.period == period.value,
            Rollup.key == key,
            Rollup.period_start.between(first, last),
        )
    )
    return {start: int(value) for start, value in rows.all()}


async def cohort_rows(
    session: AsyncSession, first: date, last: date
) -> list[tuple[date, str, int]]:
    """(active week, cohort week, accounts of the cohort active that week) for the
    weeks from `first` to `last`."""
    rows = await session.execute(
        select(Rollup.period_start, Rollup.key, Rollup.value).where(
            Rollup.metric == Metric.COHORT_ACTIVE.value,
            Rollup.period == Period.WEEK.value,
            Rollup.period_start.between(first, last),
        )
    )
    return [(start, key, int(value)) for start, key, value in rows.all()]


# --- the live part -----------------------------------------------------------------------


def _live(column: Any, after: datetime | None) -> ColumnElement[bool]:
    return true() if after is None else column > after


def _days(column: Any, first: date | None, last: date) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = (
        column <= last if first is None else column.between(first, last)
    )
    return condition


async def live_events(
    session: AsyncSession,
    kind: Kind,
    after: datetime | None,
    first: date | None,
    last: date,
    *group: Any,
) -> list[tuple[Any, ...]]:
    """Events of `kind` recorded after `after` that happened from `first` (None: any
    day) to `last`, counted per the `group` columns: rows of (*group, count)."""
    rows = await session.execute(
        select(*group, func.count())
        .where(
            UsageEvent.kind == kind.value,
            _live(UsageEvent.recorded_at, after),
            _days(UsageEvent.day, first, last),
        )
        .group_by(*group)
    )
    return [tuple(row) for row in rows.all()]


async def live_instruments(
    session: AsyncSession, after: datetime | None, first: date | None, last: date
) -> dict[str, int]:
    """Instruments of the patterns created from `first` to `last`, recorded after
    `after`: how many switch each on."""
    rows = await session.execute(
        select(UsageEventInstrument.instrument, func.count())
        .join(UsageEvent, UsageEvent.id == UsageEventInstrument.event_id)
        .where(
            UsageEvent.kind == Kind.PATTERN_CREATED.value,
            _live(UsageEvent.recorded_at, after),
            _days(UsageEventInstrument.day, first, last),
        )
        .group_by(UsageEventInstrument.instrument)
    )
    return {instrument: int(count) for instrument, count in rows.all()}


def _live_plays_and_likes(
    after: datetime | None, first: date | None, last: date
) -> list[ColumnElement[bool]]:
    return [
        UsageEvent.kind.in_([Kind.PATTERN_PLAYED.value, Kind.PATTERN_LIKED.value]),
        UsageEvent.pattern_id.is_not(None),
        _live(UsageEvent.recorded_at, after),
        _days(UsageEvent.day, first, last),
    ]


async def live_pattern_days(
    session: AsyncSession,
    after: datetime | None,
    first: date | None,
    last: date,
    pattern_ids: set[str] | None = None,
) -> list[tuple[str, date, int, int]]:
    """(pattern, day, plays, likes) of the plays and likes recorded after `after`; of
    `pattern_ids` only, if given."""
    if pattern_ids is not None and not pattern_ids:
        return []
    played = func.sum(case((UsageEvent.kind == Kind.PATTERN_PLAYED.value, 1), else_=0))
    liked = func.sum(case((UsageEvent.kind == Kind.PATTERN_LIKED.value, 1), else_=0))
    query = select(UsageEvent.pattern_id, UsageEvent.day, played, liked).where(
        *_live_plays_and_likes(after, first, last)
    )
    if pattern_ids is not None:
        query = query.where(UsageEvent.pattern_id.in_(pattern_ids))
    rows = await session.execute(query.group_by(UsageEvent.pattern_id, UsageEvent.day))
    return [(pattern_id, day, int(p), int(lk)) for pattern_id, day, p, lk in rows.all()]


async def live_active_days(
    session: AsyncSession, after: datetime | None, first: date, last: date
) -> list[tuple[str, date, date]]:
    """(account, day, cohort) of the active days recorded after `after`."""
    rows = await session.execute(
        select(ActiveDay.user_id, ActiveDay.day, ActiveDay.cohort).where(
            _live(ActiveDay.recorded_at, after), ActiveDay.day.between(first, last)
        )
    )
    return [(user_id, day, cohort) for user_id, day, cohort in rows.all()]


async def counted_before(
    session: AsyncSession, user_ids: set[str], first: date, last: date, upto: datetime
) -> set[str]:
    """Of `user_ids`, those with an active day from `first` to `last` that the rollup
    has taken in (recorded up to `upto`)."""
    if not user_ids:
        return set()
    rows = await session.execute(
        select(ActiveDay.user_id)
        .distinct()
        .where(
            ActiveDay.user_id.in_(user_ids),
            ActiveDay.day.between(first, last),
            ActiveDay.recorded_at <= upto,
        )
    )
    return set(rows.scalars())


# --- trending ------------------------------------------------------------------------------


def _shown() -> ColumnElement[bool]:
    return and_(
        Pattern.is_public.is_(True),
        Pattern.deleted_at.is_(None),
        User.deletion_scheduled_at.is_(None),
    )


@dataclass(frozen=True)
class Trending:
    """A pattern's plays, likes and score in a range, as the rollup has them."""

    plays: int
    likes: int
    score: float


@dataclass(frozen=True)
class Shown:
    """What a report shows of a pattern: its title and author."""

    title: str
    author_id: str
    author_name: str


_SHOWN_COLUMNS = (Pattern.title, Pattern.user_id, User.display_name)
_TRENDING_COLUMNS = (
    TrendingPattern.pattern_id,
    TrendingPattern.plays,
    TrendingPattern.likes,
    TrendingPattern.score,
)


def _shown_trending(time_range: str) -> Select[str, int, int, float, str, str, str]:
    # Columns only: whole Pattern and User rows would bring every configuration and
    # the authors' preferences along.
    return (
        select(*_TRENDING_COLUMNS, *_SHOWN_COLUMNS)
        .join(Pattern, Pattern.id == TrendingPattern.pattern_id)
        .join(User, User.id == Pattern.user_id)
        .where(TrendingPattern.time_range == time_range, _shown())
    )


async def top_trending(
    session: AsyncSession, time_range: str, limit: int
) -> list[tuple[str, Trending, Shown]]:
    """The `limit` public patterns with the highest score in `time_range`, and any more
    that tie with the last of them, highest first."""
    query = _shown_trending(time_range).order_by(
        TrendingPattern.score.desc(), TrendingPattern.pattern_id
    )
    rows = list((await session.execute(query.limit(limit))).all())
    if len(rows) == limit:
        last = rows[-1]
        rows += (
            await session.execute(
                query.where(
                    TrendingPattern.score == last.score,
                    TrendingPattern.pattern_id.not_in([row.pattern_id for row in rows]),
                )
            )
        ).all()
    return [
        (row[0], Trending(int(row[1]), int(row[2]), float(row[3])), Shown(row[4], row[5], row[6]))
        for row in rows
    ]


async def busiest_since(
    session: AsyncSession, after: datetime | None, first: date | None, last: date, limit: int
) -> list[tuple[str, int]]:
    """The `limit` patterns that got the most plays plus `LIKE_WEIGHT` times likes from
    `first` to `last`, recorded after `after`: (pattern, that number), most first."""
    raw = func.sum(case((UsageEvent.kind == Kind.PATTERN_PLAYED.value, 1), else_=LIKE_WEIGHT))
    rows = await session.execute(
        select(UsageEvent.pattern_id, raw)
        .where(*_live_plays_and_likes(after, first, last))
        .group_by(UsageEvent.pattern_id)
        .order_by(raw.desc(), UsageEvent.pattern_id)
        .limit(limit)
    )
    return [(pattern_id, int(count)) for pattern_id, count in rows.all()]


async def trending_of(
    session: AsyncSession, time_range: str, pattern_ids: set[str]
) -> dict[str, Trending]:
    """The rows of `time_range` of these patterns (zeros for those without one)."""
    if not pattern_ids:
        return {}
    rows = await session.execute(
        select(*_TRENDING_COLUMNS).where(
            TrendingPattern.time_range == time_range, TrendingPattern.pattern_id.in_(pattern_ids)
        )
    )
    found = {
        pattern_id: Trending(int(plays), int(likes), float(score))
        for pattern_id, plays, likes, score in rows.all()
    }
    return {pattern_id: found.get(pattern_id, Trending(0, 0, 0.0)) for pattern_id in pattern_ids}


async def trending_from(
    session: AsyncSession, time_range: str, min_score: float, exclude: set[str], limit: int
) -> dict[str, Trending] | None:
    """The rows of `time_range` scored `min_score` or more, but those of `exclude`; None
    when there are more than `limit`."""
    query = select(*_TRENDING_COLUMNS).where(
        TrendingPattern.time_range == time_range, TrendingPattern.score >= min_score
    )
    if exclude:
        query = query.where(TrendingPattern.pattern_id.not_in(exclude))
    rows = (
        await session.execute(query.order_by(TrendingPattern.score.desc()).limit(limit + 1))
    ).all()
    if len(rows) > limit:
        return None
    return {
        pattern_id: Trending(int(plays), int(likes), float(score))
        for pattern_id, plays, likes, score in rows
    }


async def reachable_trending(
    session: AsyncSession,
    time_range: str,
    after: datetime | None,
    first: date | None,
    last: date,
    exclude: set[str],
    min_score: float | None,
    weight: float,
) -> dict[str, Trending]:
    """The patterns played or liked from `first` to `last` and recorded after `after`
    (but those of `exclude`) whose rolled-up score in `time_range`, plus their plays and
    `LIKE_WEIGHT` times their likes since then times `weight`, is `min_score` or more
    (all of them when None); with their rolled-up rows (zeros: none yet)."""
    since = (
        select(
            UsageEvent.pattern_id.label("pattern_id"),
            func.sum(
                case((UsageEvent.kind == Kind.PATTERN_PLAYED.value, 1), else_=LIKE_WEIGHT)
            ).label("raw"),
        )
        .where(*_live_plays_and_likes(after, first, last))
        .group_by(UsageEvent.pattern_id)
        .subquery("since")
    )
    rolled = func.coalesce(TrendingPattern.score, 0.0)
    query = (
        select(
            since.c.pattern_id,
            func.coalesce(TrendingPattern.plays, 0),
            func.coalesce(TrendingPattern.likes, 0),
            rolled,
        )
        .select_from(since)
        .outerjoin(
            TrendingPattern,
            and_(
                TrendingPattern.pattern_id == since.c.pattern_id,
                TrendingPattern.time_range == time_range,
            ),
        )
    )
    if exclude:
        query = query.where(since.c.pattern_id.not_in(exclude))
    if min_score is not None:
        query = query.where(rolled + since.c.raw * weight >= min_score)
    return {
        pattern_id: Trending(int(plays), int(likes), float(score))
        for pattern_id, plays, likes, score in (await session.execute(query)).all()
    }


async def shown_patterns(session: AsyncSession, pattern_ids: set[str]) -> dict[str, Shown]:
    """Of these patterns, the public ones (not deleted, author not leaving): what a
    report shows of them."""
    if not pattern_ids:
        return {}
    rows = await session.execute(
        select(Pattern.id, *_SHOWN_COLUMNS)
        .join(User, User.id == Pattern.user_id)
        .where(Pattern.id.in_(pattern_ids), _shown())
    )
    return {
        pattern_id: Shown(title, author, name) for pattern_id, title, author, name in rows.all()
    }
