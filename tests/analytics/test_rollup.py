"""The rollup: idempotent (twice, or two at once, give the same table), catching up after
downtime, counting late events on the day they happened, moving the trending ranges on
with the days; raw events pruned after their retention and with their account."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics import service
from beatmachine.analytics.metrics import Kind
from beatmachine.analytics.models import ActiveDay, Rollup, TrendingPattern, UsageEvent
from beatmachine.auth.service import purge_deleted_accounts
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.users.models import User
from tests.analytics.helpers import Usage, report, rollup_tables
from tests.factories import Account


async def _rollup_value(
    db: AsyncSession, metric: str, period: str, start: date, key: str = ""
) -> int | None:
    value = (
        await db.execute(
            select(Rollup.value).where(
                Rollup.metric == metric,
                Rollup.period == period,
                Rollup.period_start == start,
                Rollup.key == key,
            )
        )
    ).scalar_one_or_none()
    await db.commit()
    return value


async def _record_plays(state: AppState, pattern_id: str, when: datetime, count: int) -> None:
    async with state.sessionmaker() as session:
        for _ in range(count):
            await service.record_usage(
                session, state, Kind.PATTERN_PLAYED, when, user_id=None, pattern_id=pattern_id
            )
        await session.commit()


@pytest.mark.usefixtures("usage")
async def test_a_rollup_run_twice_gives_the_same_table(state: AppState, db: AsyncSession) -> None:
    await service.roll_up(state)
    once = await rollup_tables(db)

    again = await service.roll_up(state)

    assert again.days == []
    assert await rollup_tables(db) == once
    rollups, trending = once
    today = utcnow().date()
    assert ("plays", "day", today, "", 6) in rollups
    assert ("plays", "week", today - timedelta(days=today.weekday()), "", 6) in rollups
    assert len(trending) == 3 * 5  # three patterns played, in each of the five ranges


@pytest.mark.usefixtures("usage")
async def test_two_rollups_at_once_count_everything_once(state: AppState, db: AsyncSession) -> None:
    runs = await asyncio.gather(service.roll_up(state), service.roll_up(state))

    assert sorted(len(run.days) for run in runs) == [0, 1]
    rollups, _ = await rollup_tables(db)
    assert ("plays", "day", utcnow().date(), "", 6) in rollups


async def test_a_late_event_is_counted_on_the_day_it_happened(
    state: AppState, db: AsyncSession, usage: Usage
) -> None:
    await service.roll_up(state)
    three_days_ago = utcnow() - timedelta(days=3)
    await _record_plays(state, usage.son, three_days_ago, 2)

    run = await service.roll_up(state)

    assert run.days == [three_days_ago.date()]
    assert await _rollup_value(db, "plays", "day", three_days_ago.date()) == 2
    assert await _rollup_value(db, "plays", "day", utcnow().date()) == 6


async def test_a_rollup_after_downtime_fills_every_day_since(
    state: AppState, db: AsyncSession, usage: Usage
) -> None:
    now = utcnow()
    await service.roll_up(state)
    for days_ago in (5, 4, 2):
        await _record_plays(state, usage.tumbao, now - timedelta(days=days_ago), days_ago)

    run = await service.roll_up(state)

    assert run.days == [(now - timedelta(days=d)).date() for d in (5, 4, 2)]
    for days_ago in (5, 4, 2):
        day = (now - timedelta(days=days_ago)).date()
        assert await _rollup_value(db, "plays", "day", day) == days_ago
        assert await _rollup_value(db, "pattern_plays", "day", day, usage.tumbao) == days_ago


async def test_the_trending_ranges_move_on_with_the_days(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, usage: Usage
) -> None:
    now = utcnow()
    await service.roll_up(state, now)

    await service.roll_up(state, now + timedelta(days=1))

    rows = await db.execute(
        select(TrendingPattern.time_range, TrendingPattern.score).where(
            TrendingPattern.pattern_id == usage.son
        )
    )
    scores = {time_range: score for time_range, score in rows.all()}
    await db.commit()
    # Gone from "today"; a day older in the others, each at its half-life.
    assert "day" not in scores
    assert scores["week"] == pytest.approx(7 * 2 ** (-1 / 2))
    assert scores["month"] == pytest.approx(7 * 2 ** (-1 / 7))
    assert scores["all"] == pytest.approx(7 * 2 ** (-1 / 180))


async def test_a_day_leaves_the_week_after_seven_days(
    state: AppState, db: AsyncSession, usage: Usage
) -> None:
    now = utcnow()
    await service.roll_up(state, now)

    await service.roll_up(state, now + timedelta(days=7))

    rows = await db.execute(
        select(TrendingPattern.time_range).where(TrendingPattern.pattern_id == usage.son)
    )
    ranges = set(rows.scalars())
    await db.commit()
    assert ranges == {"month", "year", "all"}


@pytest.mark.usefixtures("usage")
async def test_raw_events_past_their_retention_go_and_their_rollups_stay(
    state: AppState, db: AsyncSession
) -> None:
    await service.roll_up(state)
    long_ago = utcnow() - timedelta(days=91)
    await db.execute(update(UsageEvent).values(day=long_ago.date(), occurred_at=long_ago))
    await db.commit()
    await service.roll_up(state)  # the day moved: nothing new recorded

    removed = await service.prune_events(state)

    left = (await db.execute(select(func.count()).select_from(UsageEvent))).scalar_one()
    await db.commit()
    assert removed == 3 + 6 + 3 + 4  # created, played, liked, registered
    assert left == 0
    assert await _rollup_value(db, "plays", "day", utcnow().date()) == 6


async def test_a_purged_account_takes_its_raw_events_with_it(
    client: httpx.AsyncClient,
    state: AppState,
    db: AsyncSession,
    usage: Usage,
    other: Account,
    admin: Account,
) -> None:
    await service.roll_up(state)
    before = await report(client, "plays?timeRange=day", admin)
    await db.execute(
        update(User)
        .where(User.id == other.id)
        .values(deletion_scheduled_at=utcnow() - timedelta(days=1))
    )
    await db.commit()

    assert await purge_deleted_accounts(state) == 1

    events = await db.execute(
        select(func.count()).select_from(UsageEvent).where(UsageEvent.user_id == other.id)
    )
    active = await db.execute(
        select(func.count()).select_from(ActiveDay).where(ActiveDay.user_id == other.id)
    )
    counts = (events.scalar_one(), active.scalar_one())
    await db.commit()
    assert counts == (0, 0)
    assert await report(client, "plays?timeRange=day", admin) == before
