"""The rollup: a periodic job that adds the usage events recorded since its last run into
the `analytics` table (days, then the weeks, months and years that hold them) and into
the trending ranges, in one transaction that holds the rollup's lock.

Every event is counted once: a run reads the events recorded after the previous run's
watermark up to its own (`ANALYTICS_ROLLUP_LAG` before it started, so that a transaction
still open then has committed), and moves the watermark in the same transaction. A second
run, or two workers at once, add nothing twice: the second waits for the lock and then
finds nothing new. A late event (recorded days after it happened) is found by when it was
recorded and counted on the day it happened; after downtime the next run takes
everything recorded meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics import repository
from beatmachine.analytics.metrics import Metric
from beatmachine.analytics.ranges import (
    HALF_LIFE_DAYS,
    RANGE_DAYS,
    Period,
    TimeRange,
    decay,
    in_window,
    period_end,
    periods_between,
)
from beatmachine.core.db import in_batches, transaction
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState

PRUNE_BATCH = 10_000


@dataclass(frozen=True)
class RollupRun:
    """What one run did: the window of recording times it took in and the days it
    touched."""

    after: datetime | None
    upto: datetime
    days: list[date]


async def roll_up(state: AppState, now: datetime | None = None) -> RollupRun:
    """Periodic job: add everything recorded since the last run into the rollups and the
    trending ranges (see the module's docstring); returns what it did."""
    async with transaction(state.sessionmaker) as session:
        return await roll_up_in(session, state, now or utcnow())


async def roll_up_in(session: AsyncSession, state: AppState, now: datetime) -> RollupRun:
    """The rollup inside the caller's transaction, at time `now`."""
    locked = await repository.lock_state(session)
    after = locked.watermark
    upto = now - timedelta(seconds=state.settings.analytics_rollup_lag)
    if after is not None and upto <= after:
        return RollupRun(after, after, [])
    today = now.date()
    if locked.today is not None and locked.today < today:
        await _slide_trending(session, locked.today, today)
    days = await repository.days_recorded(session, after, upto)
    for metric in Metric:
        if metric is not Metric.COHORT_ACTIVE:
            await repository.add_to_days(session, metric, after, upto)
    retained_from = today - timedelta(seconds=state.settings.analytics_event_retention)
    if days:
        for period in (Period.WEEK, Period.MONTH, Period.YEAR):
            for start in _touched(period, days):
                await repository.replace_period(
                    session, period.value, start, period_end(period, start), retained_from, upto
                )
    for time_range in TimeRange:
        weights = {
            day: decay(time_range, day, today) for day in days if in_window(time_range, day, today)
        }
        if weights:
            await repository.add_to_trending(session, time_range.value, weights, after, upto)
    locked.watermark = upto
    locked.today = today
    await session.flush()
    return RollupRun(after, upto, days)


def _touched(period: Period, days: list[date]) -> list[date]:
    starts: set[date] = set()
    for day in days:
        starts.update(periods_between(period, day, day))
    return sorted(starts)


async def _slide_trending(session: AsyncSession, before: date, today: date) -> None:
    """The ranges end on `today` now, not on `before`: the days that left each range go
    out of it, and every score is rescaled by the days that passed."""
    passed = (today - before).days
    for time_range in TimeRange:
        days = RANGE_DAYS[time_range]
        if days is not None and passed >= days:
            await repository.clear_trending(session, time_range.value)
            continue
        if days is not None:
            first_kept = today - timedelta(days=days - 1)
            leaving = before - timedelta(days=days - 1)
            while leaving < first_kept:
                weight = decay(time_range, leaving, before)
                await repository.remove_day_from_trending(
                    session, time_range.value, leaving, weight
                )
                leaving += timedelta(days=1)
        half_life = HALF_LIFE_DAYS[time_range]
        if half_life is not None:
            await repository.rescale_trending(
                session, time_range.value, float(2.0 ** (-passed / half_life))
            )
    await repository.drop_empty_trending(session, [r.value for r in TimeRange])


async def prune_events(state: AppState) -> int:
    """Periodic job: remove the usage events and active days of the days older than
    `ANALYTICS_EVENT_RETENTION` that the rollup has taken in; returns how many events
    went."""
    async with transaction(state.sessionmaker) as session:
        rolled_up_to = await repository.watermark(session)
    if rolled_up_to is None:
        return 0
    retained_from = utcnow().date() - timedelta(seconds=state.settings.analytics_event_retention)
    before = min(retained_from, rolled_up_to.date())

    async def events(session: AsyncSession) -> int:
        return await repository.prune_events(session, before, PRUNE_BATCH)

    removed = await in_batches(state.sessionmaker, events, PRUNE_BATCH)
    async with transaction(state.sessionmaker) as session:
        await repository.prune_active_days(session, before)
    return removed
