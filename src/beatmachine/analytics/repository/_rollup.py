"""The rollup's SQL: usage events recorded in a window of time added into the `analytics`
table and into the trending ranges, the periods recomputed from their days, and the lock
that lets one rollup run at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    distinct,
    func,
    literal,
    select,
    union,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics.metrics import SUMMED, Kind, Metric
from beatmachine.analytics.models import (
    ActiveDay,
    Rollup,
    RollupState,
    TrendingPattern,
    UsageEvent,
    UsageEventInstrument,
)
from beatmachine.analytics.ranges import LIKE_WEIGHT
from beatmachine.core.ids import utcnow
from beatmachine.patterns.models import Pattern

STATE = "rollup"
ROLLUP_COLUMNS = ["metric", "period", "period_start", "key", "value"]
TRENDING_COLUMNS = ["time_range", "pattern_id", "plays", "likes", "score"]


def _insert(session: AsyncSession) -> Any:
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def recorded_between(column: Any, after: datetime | None, upto: datetime) -> ColumnElement[bool]:
    """`column` (a `recorded_at`) after `after` (if any) and up to `upto`."""
    if after is None:
        return and_(column <= upto)
    return and_(column > after, column <= upto)


# --- the lock and the state ------------------------------------------------------------


async def lock_state(session: AsyncSession) -> RollupState:
    """The rollup's state row, locked until the transaction ends (an UPDATE takes the row
    lock on PostgreSQL and the write lock on SQLite, so a second rollup waits here)."""
    await session.execute(_insert(session)(RollupState).values(name=STATE).on_conflict_do_nothing())
    await session.execute(
        update(RollupState).where(RollupState.name == STATE).values(locked_at=utcnow())
    )
    state = await session.get(RollupState, STATE, populate_existing=True)
    assert state is not None  # just written
    return state


async def watermark(session: AsyncSession) -> datetime | None:
    """Up to when the recorded events are in the rollups (None: not rolled up yet)."""
    return (
        await session.execute(select(RollupState.watermark).where(RollupState.name == STATE))
    ).scalar_one_or_none()


async def days_recorded(
    session: AsyncSession, after: datetime | None, upto: datetime
) -> list[date]:
    """The days of the events (and active days) recorded in the window, oldest first."""
    events = select(UsageEvent.day).where(recorded_between(UsageEvent.recorded_at, after, upto))
    active = select(ActiveDay.day).where(recorded_between(ActiveDay.recorded_at, after, upto))
    rows = await session.execute(select(union(events, active).subquery().c.day))
    return sorted(day for (day,) in rows.all())


async def first_day(session: AsyncSession) -> date | None:
    """The first day any rollup is kept for."""
    # One probe of the primary key (metric, period, period_start, ...) per metric: a min
    # over `period = 'day'` alone reads every daily rollup (millions of pattern plays).
    firsts = [
        select(func.min(Rollup.period_start))
        .where(Rollup.metric == metric.value, Rollup.period == "day")
        .scalar_subquery()
        for metric in Metric
    ]
    row = (await session.execute(select(*firsts))).one()
    days = [day for day in row if day is not None]
    return min(days) if days else None


# --- days: what the window's events add -----------------------------------------------


def _key_of(metric: Metric) -> ColumnElement[Any]:
    if metric in (Metric.PATTERNS_CREATED, Metric.PATTERNS_SAVED):
        return func.coalesce(UsageEvent.flavor, "")
    if metric is Metric.TEMPO:
        return func.coalesce(UsageEvent.flavor, "") + ":" + cast(UsageEvent.bpm, String)
    if metric is Metric.KEY:
        return func.coalesce(UsageEvent.flavor, "") + ":" + cast(UsageEvent.key_note, String)
    if metric in (Metric.PATTERN_PLAYS, Metric.PATTERN_LIKES):
        return func.coalesce(UsageEvent.pattern_id, "")
    return literal("")


# The metrics counted from events of one kind.
EVENT_COUNTS: dict[Metric, Kind] = {
    Metric.PATTERNS_CREATED: Kind.PATTERN_CREATED,
    Metric.PATTERNS_SAVED: Kind.PATTERN_SAVED,
    Metric.TEMPO: Kind.PATTERN_CREATED,
    Metric.KEY: Kind.PATTERN_CREATED,
    Metric.PLAYS: Kind.PATTERN_PLAYED,
    Metric.LIKES: Kind.PATTERN_LIKED,
    Metric.SIGNUPS: Kind.USER_REGISTERED,
    Metric.PATTERN_PLAYS: Kind.PATTERN_PLAYED,
    Metric.PATTERN_LIKES: Kind.PATTERN_LIKED,
}


def daily_counts(
    metric: Metric, after: datetime | None, upto: datetime
) -> Select[str, str, date, str, int]:
    """Per day and key, how many `metric` the events recorded in the window add; as
    rollup rows."""
    if metric is Metric.INSTRUMENTS:
        return (
            select(
                literal(metric.value),
                literal("day"),
                UsageEventInstrument.day,
                UsageEventInstrument.instrument,
                func.count(),
            )
            .join(UsageEvent, UsageEvent.id == UsageEventInstrument.event_id)
            .where(
                # The instruments of saves are kept too; this counts created patterns.
                UsageEvent.kind == Kind.PATTERN_CREATED.value,
                recorded_between(UsageEvent.recorded_at, after, upto),
            )
            .group_by(UsageEventInstrument.day, UsageEventInstrument.instrument)
        )
    if metric is Metric.ACTIVE_USERS:
        return (
            select(literal(metric.value), literal("day"), ActiveDay.day, literal(""), func.count())
            .where(recorded_between(ActiveDay.recorded_at, after, upto))
            .group_by(ActiveDay.day)
        )
    key = _key_of(metric)
    return (
        select(literal(metric.value), literal("day"), UsageEvent.day, key, func.count())
        .where(
            UsageEvent.kind == EVENT_COUNTS[metric].value,
            recorded_between(UsageEvent.recorded_at, after, upto),
        )
        .group_by(UsageEvent.day, key)
    )


async def add_to_days(
    session: AsyncSession, metric: Metric, after: datetime | None, upto: datetime
) -> None:
    """Add what the window's events count for `metric` to its daily rollups."""
    statement = _insert(session)(Rollup).from_select(
        ROLLUP_COLUMNS, daily_counts(metric, after, upto)
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["metric", "period", "period_start", "key"],
            set_={"value": Rollup.value + statement.excluded.value},
        )
    )


# --- weeks, months, years --------------------------------------------------------------


async def replace_period(
    session: AsyncSession,
    period: str,
    start: date,
    end: date,
    retained_from: date,
    upto: datetime,
) -> None:
    """Recompute the `period` that runs from `start` to `end`: the summed metrics from
    its days, the distinct ones (active accounts, cohorts) from the active days recorded
    up to `upto`, when they are all still kept (the period starts on or after
    `retained_from`)."""
    summed = [metric.value for metric in SUMMED]
    await session.execute(
        delete(Rollup).where(
            Rollup.period == period, Rollup.period_start == start, Rollup.metric.in_(summed)
        )
    )
    await session.execute(
        _insert(session)(Rollup).from_select(
            ROLLUP_COLUMNS,
            select(
                Rollup.metric, literal(period), literal(start), Rollup.key, func.sum(Rollup.value)
            )
            .where(
                Rollup.period == "day",
                Rollup.period_start.between(start, end),
                Rollup.metric.in_(summed),
            )
            .group_by(Rollup.metric, Rollup.key),
        )
    )
    if start < retained_from:
        return
    distinct_metrics = [Metric.ACTIVE_USERS.value]
    if period == "week":
        distinct_metrics.append(Metric.COHORT_ACTIVE.value)
    await session.execute(
        delete(Rollup).where(
            Rollup.period == period,
            Rollup.period_start == start,
            Rollup.metric.in_(distinct_metrics),
        )
    )
    # Only what the rollup has taken in: the rest is the live part of an answer.
    in_period = and_(ActiveDay.day.between(start, end), ActiveDay.recorded_at <= upto)
    active = (
        await session.execute(select(func.count(distinct(ActiveDay.user_id))).where(in_period))
    ).scalar_one()
    if active:
        await session.execute(
            _insert(session)(Rollup).values(
                metric=Metric.ACTIVE_USERS.value,
                period=period,
                period_start=start,
                key="",
                value=active,
            )
        )
    if period == "week":
        cohort = cast(ActiveDay.cohort, String)
        cohorts = (
            select(
                literal(Metric.COHORT_ACTIVE.value),
                literal(period),
                literal(start),
                cohort,
                func.count(distinct(ActiveDay.user_id)),
            )
            .where(in_period)
            .group_by(cohort)
        )
        await session.execute(_insert(session)(Rollup).from_select(ROLLUP_COLUMNS, cohorts))


# --- trending ----------------------------------------------------------------------------


async def add_to_trending(
    session: AsyncSession,
    time_range: str,
    weights: Mapping[date, float],
    after: datetime | None,
    upto: datetime,
) -> None:
    """Add the plays and likes recorded in the window on the days of `weights` to
    `time_range`, each scored with the weight of its day."""
    played = case((UsageEvent.kind == Kind.PATTERN_PLAYED.value, 1), else_=0)
    liked = case((UsageEvent.kind == Kind.PATTERN_LIKED.value, 1), else_=0)
    # All the days in one pass over the window's events (a statement per day would read
    # them again for every day and range: 218 statements in a full rollup), each row's
    # weight found by a hashed join to the days rather than a CASE over them.
    days = union_all(
        *(
            select(literal(day, Date).label("day"), literal(value, Float).label("weight"))
            for day, value in weights.items()
        )
    ).subquery("weights")
    rows = (
        select(
            literal(time_range),
            UsageEvent.pattern_id,
            func.sum(played),
            func.sum(liked),
            func.sum((played + LIKE_WEIGHT * liked) * days.c.weight),
        )
        .join(days, days.c.day == UsageEvent.day)
        # Only patterns that still exist: a play may outlive a purged pattern.
        .join(Pattern, Pattern.id == UsageEvent.pattern_id)
        .where(
            UsageEvent.kind.in_([Kind.PATTERN_PLAYED.value, Kind.PATTERN_LIKED.value]),
            recorded_between(UsageEvent.recorded_at, after, upto),
        )
        .group_by(UsageEvent.pattern_id)
    )
    await _merge_trending(session, rows)


async def remove_day_from_trending(
    session: AsyncSession, time_range: str, day: date, weight: float
) -> None:
    """Take the plays and likes of `day` (as its daily rollups have them) out of
    `time_range`, scored with the `weight` they were added with."""
    plays = func.sum(case((Rollup.metric == Metric.PATTERN_PLAYS.value, Rollup.value), else_=0))
    likes = func.sum(case((Rollup.metric == Metric.PATTERN_LIKES.value, Rollup.value), else_=0))
    rows = (
        select(
            literal(time_range),
            Rollup.key,
            -plays,
            -likes,
            -(plays + LIKE_WEIGHT * likes) * literal(weight),
        )
        .join(Pattern, Pattern.id == Rollup.key)
        .where(
            Rollup.period == "day",
            Rollup.period_start == day,
            Rollup.metric.in_([Metric.PATTERN_PLAYS.value, Metric.PATTERN_LIKES.value]),
        )
        .group_by(Rollup.key)
    )
    await _merge_trending(session, rows)


async def _merge_trending(
    session: AsyncSession, rows: Select[str, str | None, Any, Any, Any]
) -> None:
    statement = _insert(session)(TrendingPattern).from_select(TRENDING_COLUMNS, rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["time_range", "pattern_id"],
            set_={
                "plays": TrendingPattern.plays + statement.excluded.plays,
                "likes": TrendingPattern.likes + statement.excluded.likes,
                "score": TrendingPattern.score + statement.excluded.score,
            },
        )
    )


async def rescale_trending(session: AsyncSession, time_range: str, factor: float) -> None:
    """Multiply every score of `time_range` by `factor` (a day has passed: every play in
    it is a day older)."""
    await session.execute(
        update(TrendingPattern)
        .where(TrendingPattern.time_range == time_range)
        .values(score=TrendingPattern.score * factor)
    )


async def clear_trending(session: AsyncSession, time_range: str) -> None:
    """Empty `time_range` (every day in it has left it)."""
    await session.execute(delete(TrendingPattern).where(TrendingPattern.time_range == time_range))


async def drop_empty_trending(session: AsyncSession, time_ranges: Sequence[str]) -> None:
    """Remove the patterns left with no play and no like in a range."""
    await session.execute(
        delete(TrendingPattern).where(
            TrendingPattern.time_range.in_(list(time_ranges)),
            TrendingPattern.plays <= 0,
            TrendingPattern.likes <= 0,
        )
    )


# --- raw events past their retention -----------------------------------------------------


async def prune_events(session: AsyncSession, before: date, batch: int) -> int:
    """Delete up to `batch` usage events of days before `before` (with their
    instruments); returns how many went."""
    old = list(
        (
            await session.execute(select(UsageEvent.id).where(UsageEvent.day < before).limit(batch))
        ).scalars()
    )
    if not old:
        return 0
    # The instruments first: on SQLite a cascade would take them one event at a time.
    await session.execute(
        delete(UsageEventInstrument).where(UsageEventInstrument.event_id.in_(old))
    )
    await session.execute(delete(UsageEvent).where(UsageEvent.id.in_(old)))
    return len(old)


async def prune_active_days(session: AsyncSession, before: date) -> int:
    """Delete the active days before `before`; returns how many went."""
    result = await session.execute(delete(ActiveDay).where(ActiveDay.day < before))
    return int(getattr(result, "rowcount", 0) or 0)
