"""The reports: each answer is its rollups over the range plus the live part (what was
recorded after the rollup's watermark), cached for `ANALYTICS_CACHE_TTL` seconds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics import repository
from beatmachine.analytics.metrics import Kind, Metric
from beatmachine.analytics.models import UsageEvent
from beatmachine.analytics.ranges import (
    LIKE_WEIGHT,
    Period,
    Tile,
    TimeRange,
    decay,
    period_end,
    period_start,
    periods_between,
    range_start,
    tiles,
)
from beatmachine.analytics.schemas import (
    Cohort,
    InstrumentUsage,
    KeyCount,
    KeyDistribution,
    PatternAuthor,
    PopularInstruments,
    PopularPatterns,
    Retention,
    Series,
    SeriesPoint,
    TempoCount,
    TempoDistribution,
    TrendingPatternOut,
)
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.machines import service as machines_service

KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SERIES_METRICS = {
    "plays": (Metric.PLAYS, Kind.PATTERN_PLAYED),
    "likes": (Metric.LIKES, Kind.PATTERN_LIKED),
    "signups": (Metric.SIGNUPS, Kind.USER_REGISTERED),
    "patterns": (Metric.PATTERNS_CREATED, Kind.PATTERN_CREATED),
}
CACHE_PREFIX = "analytics:v1"
# Rolled-up patterns looked at by score before every pattern played since is.
CANDIDATES = 200
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Window:
    """Where a report looks: its days, the rollups that cover them, and from when on
    the events are live (recorded after the watermark)."""

    time_range: TimeRange
    today: date
    first: date
    # The first day of the live part; None for `all` (any day).
    live_first: date | None
    tiles: list[Tile]
    watermark: datetime | None
    # The day the trending ranges end on (None: not rolled up yet).
    trending_today: date | None


async def _window(session: AsyncSession, time_range: TimeRange) -> Window:
    state = await repository.rollup_state(session)
    watermark = state.watermark if state is not None else None
    today = utcnow().date()
    first_rolled = await repository.first_day(session) if time_range is TimeRange.ALL else None
    first = range_start(time_range, today, first_rolled)
    return Window(
        time_range=time_range,
        today=today,
        first=first,
        live_first=None if time_range is TimeRange.ALL else first,
        tiles=tiles(first, today) if watermark is not None else [],
        watermark=watermark,
        trending_today=state.today if state is not None else None,
    )


async def _cached(
    state: AppState, key: str, model: type[ModelT], compute: Callable[[], Awaitable[ModelT]]
) -> ModelT:
    ttl = state.settings.analytics_cache_ttl
    cache_key = f"{CACHE_PREFIX}:{key}"
    if ttl > 0:
        hit = await state.cache.get(cache_key)
        if hit is not None:
            return model.model_validate_json(hit)
    result = await compute()
    if ttl > 0:
        await state.cache.set(cache_key, result.model_dump_json(by_alias=True).encode(), ttl)
    return result


def _share(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


async def popular_instruments(
    session: AsyncSession, state: AppState, time_range: TimeRange, limit: int
) -> PopularInstruments:
    """The instruments switched on by the most patterns created in the range: each with
    that number and its share of all the patterns created in the range, in percent."""

    async def compute() -> PopularInstruments:
        window = await _window(session, time_range)
        counts: dict[str, int] = defaultdict(int)
        for instrument, count in (
            await repository.summed_by_key(session, Metric.INSTRUMENTS, window.tiles)
        ).items():
            counts[instrument] += count
        live = await repository.live_instruments(
            session, window.watermark, window.live_first, window.today
        )
        for instrument, count in live.items():
            counts[instrument] += count
        created = sum(
            (
                await repository.summed_by_key(session, Metric.PATTERNS_CREATED, window.tiles)
            ).values()
        )
        [(live_created,)] = await repository.live_events(
            session, Kind.PATTERN_CREATED, window.watermark, window.live_first, window.today
        )
        created += int(live_created)
        titles = await machines_service.instrument_titles(session, state.memo)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return PopularInstruments(
            time_range=time_range.value,
            patterns_created=created,
            instruments=[
                InstrumentUsage(
                    id=instrument,
                    title=titles.get(instrument, instrument),
                    usage_count=count,
                    percentage=_share(count, created),
                )
                for instrument, count in ranked
                if count > 0
            ],
        )

    return await _cached(
        state, f"instruments:{time_range.value}:{limit}", PopularInstruments, compute
    )


async def _created_by(
    session: AsyncSession, window: Window, metric: Metric, column: str
) -> dict[tuple[str, int], int]:
    """Patterns created in the window per (flavor, bpm or key)."""
    counts: dict[tuple[str, int], int] = defaultdict(int)
    for key, count in (await repository.summed_by_key(session, metric, window.tiles)).items():
        flavor, _, value = key.rpartition(":")
        if value.lstrip("-").isdigit():
            counts[(flavor, int(value))] += count
    live = await repository.live_events(
        session,
        Kind.PATTERN_CREATED,
        window.watermark,
        window.live_first,
        window.today,
        UsageEvent.flavor,
        getattr(UsageEvent, column),
    )
    for flavor, value, count in live:
        if value is not None:
            counts[(flavor or "", int(value))] += int(count)
    return counts


async def tempo_distribution(
    session: AsyncSession,
    state: AppState,
    time_range: TimeRange,
    bucket: int,
    flavor: str | None,
) -> TempoDistribution:
    """How many patterns created in the range have each tempo (or each tempo bucket of
    `bucket` bpm, named by its lowest tempo), of one flavor if given."""

    async def compute() -> TempoDistribution:
        window = await _window(session, time_range)
        counts: dict[int, int] = defaultdict(int)
        for (of_flavor, bpm), count in (
            await _created_by(session, window, Metric.TEMPO, "bpm")
        ).items():
            if flavor is None or of_flavor == flavor:
                counts[bpm - bpm % bucket] += count
        return TempoDistribution(
            time_range=time_range.value,
            bucket=bucket,
            flavor=flavor,
            distribution=[
                TempoCount(bpm=bpm, count=count) for bpm, count in sorted(counts.items()) if count
            ],
        )

    key = f"tempo:{time_range.value}:{bucket}:{flavor or ''}"
    return await _cached(state, key, TempoDistribution, compute)


async def key_distribution(
    session: AsyncSession, state: AppState, time_range: TimeRange, flavor: str | None
) -> KeyDistribution:
    """How many patterns created in the range are in each key (0 = C … 11 = B), and
    their share, of one flavor if given; every key is listed."""

    async def compute() -> KeyDistribution:
        window = await _window(session, time_range)
        counts: dict[int, int] = defaultdict(int)
        for (of_flavor, key_note), count in (
            await _created_by(session, window, Metric.KEY, "key_note")
        ).items():
            if (flavor is None or of_flavor == flavor) and 0 <= key_note < len(KEY_NAMES):
                counts[key_note] += count
        total = sum(counts.values())
        return KeyDistribution(
            time_range=time_range.value,
            flavor=flavor,
            distribution=[
                KeyCount(
                    key_note=note,
                    name=name,
                    count=counts[note],
                    percentage=_share(counts[note], total),
                )
                for note, name in enumerate(KEY_NAMES)
            ],
        )

    return await _cached(state, f"keys:{time_range.value}:{flavor or ''}", KeyDistribution, compute)


async def popular_patterns(
    session: AsyncSession, state: AppState, time_range: TimeRange, limit: int
) -> PopularPatterns:
    """The public patterns with the highest trending score in the range: the sum of
    their plays and `LIKE_WEIGHT` times their likes, each weighted by its age (halved
    every `HALF_LIFE_DAYS` of the range)."""

    async def compute() -> PopularPatterns:
        window = await _window(session, time_range)
        # Scores of the rollup are relative to the day it last ended the ranges on.
        reference = window.trending_today or window.today

        async def live_of(pattern_ids: set[str] | None) -> dict[str, list[float]]:
            live: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
            for pattern_id, day, plays, likes in await repository.live_pattern_days(
                session, window.watermark, window.live_first, window.today, pattern_ids
            ):
                entry = live[pattern_id]
                entry[0] += plays
                entry[1] += likes
                entry[2] += (plays + LIKE_WEIGHT * likes) * decay(time_range, day, reference)
            return live

        rolled: dict[str, repository.Trending] = {}
        shown: dict[str, repository.Shown] = {}
        if window.watermark is None:
            live = await live_of(None)
        else:
            for pattern_id, trending, about in await repository.top_trending(
                session, time_range.value, limit
            ):
                rolled[pattern_id] = trending
                shown[pattern_id] = about
            live = await live_of(set(rolled))
            # A pattern below the rollup's top (and its ties) can reach the lowest final
            # score of that top only if its rolled-up score is at least that less the most
            # any pattern got since (weighted as today's), and only if what it got since is
            # at least that less the top's lowest rolled-up score. A busy minute plays
            # thousands of patterns; one of these two bounds leaves a few to look at.
            finals = sorted((t.score + live[p][2] for p, t in rolled.items()), reverse=True)
            floor = finals[limit - 1] - 1e-6 if len(finals) >= limit else None
            weight = decay(time_range, window.today, reference)
            reachable: dict[str, repository.Trending] | None = None
            if floor is not None:
                lowest = sorted((t.score for t in rolled.values()), reverse=True)[limit - 1]
                busiest = await repository.busiest_since(
                    session, window.watermark, window.live_first, window.today, CANDIDATES + 1
                )
                peak = busiest[0][1] * weight if busiest else 0.0
                if not busiest:
                    reachable = {}
                elif floor - peak > 0:
                    reachable = await repository.trending_from(
                        session, time_range.value, floor - peak, set(rolled), CANDIDATES
                    )
                if reachable is None and (
                    len(busiest) <= CANDIDATES or busiest[-1][1] * weight < floor - lowest
                ):
                    enough = {p for p, got in busiest if got * weight >= floor - lowest}
                    reachable = await repository.trending_of(
                        session, time_range.value, enough - set(rolled)
                    )
            if reachable is None:
                reachable = await repository.reachable_trending(
                    session,
                    time_range.value,
                    window.watermark,
                    window.live_first,
                    window.today,
                    set(rolled),
                    floor,
                    weight,
                )
            rolled |= reachable
            live |= await live_of(set(reachable))
        nothing = repository.Trending(0, 0, 0.0)
        ranked = []
        for pattern_id in set(rolled) | set(live):
            base = rolled.get(pattern_id, nothing)
            extra = live.get(pattern_id, [0.0, 0.0, 0.0])
            plays, likes = int(base.plays + extra[0]), int(base.likes + extra[1])
            if plays > 0 or likes > 0:
                ranked.append((round(base.score + extra[2], 4), plays, likes, pattern_id))
        ranked.sort(key=lambda entry: (-entry[0], -entry[1], entry[3]))
        # What is shown of the best, a few at a time: most are public, so one look-up
        # of twice the limit usually finds them all.
        entries: list[TrendingPatternOut] = []
        for begin in range(0, len(ranked), 2 * limit):
            batch = ranked[begin : begin + 2 * limit]
            shown |= await repository.shown_patterns(
                session, {entry[3] for entry in batch} - set(shown)
            )
            for score, plays, likes, pattern_id in batch:
                found = shown.get(pattern_id)
                if found is not None and len(entries) < limit:
                    entries.append(
                        TrendingPatternOut(
                            id=pattern_id,
                            title=found.title,
                            plays=plays,
                            likes=likes,
                            score=score,
                            author=PatternAuthor(
                                id=found.author_id, display_name=found.author_name
                            ),
                        )
                    )
            if len(entries) >= limit:
                break
        return PopularPatterns(time_range=time_range.value, patterns=entries)

    return await _cached(state, f"patterns:{time_range.value}:{limit}", PopularPatterns, compute)


async def series(
    session: AsyncSession, state: AppState, name: str, time_range: TimeRange, period: Period
) -> Series:
    """`name` (plays, likes, signups, patterns created) per day, week or month of the
    range, every period listed (0 when there was none)."""
    metric, kind = SERIES_METRICS[name]

    async def compute() -> Series:
        window = await _window(session, time_range)
        starts = periods_between(period, window.first, window.today)
        values: dict[date, int] = defaultdict(int)
        if window.watermark is not None:
            values.update(await repository.series(session, metric, period, starts[0], window.today))
        live = await repository.live_events(
            session, kind, window.watermark, window.live_first, window.today, UsageEvent.day
        )
        for day, count in live:
            values[period_start(period, day)] += int(count)
        return Series(
            metric=name,
            time_range=time_range.value,
            period=period.value,
            series=[SeriesPoint(period_start=start, value=values[start]) for start in starts],
        )

    key = f"series:{name}:{time_range.value}:{period.value}"
    return await _cached(state, key, Series, compute)


async def _newly_active(
    session: AsyncSession,
    window: Window,
    period: Period,
    rows: list[tuple[str, date, date]],
) -> dict[tuple[date, date], set[str]]:
    """Of the live active days, per (period start, cohort), the accounts the rollup has
    not counted in that period yet."""
    users: dict[tuple[date, date], set[str]] = defaultdict(set)
    for user_id, day, cohort in rows:
        users[(period_start(period, day), cohort)].add(user_id)
    if window.watermark is None:
        return users
    by_period: dict[date, set[str]] = defaultdict(set)
    for (start, _), ids in users.items():
        by_period[start] |= ids
    for start, ids in by_period.items():
        counted = await repository.counted_before(
            session, ids, start, period_end(period, start), window.watermark
        )
        for (of_start, cohort), cohort_ids in users.items():
            if of_start == start:
                users[(of_start, cohort)] = cohort_ids - counted
    return users


async def active_users(
    session: AsyncSession, state: AppState, time_range: TimeRange, period: Period
) -> Series:
    """Distinct accounts active in each day, week or month of the range."""

    async def compute() -> Series:
        window = await _window(session, time_range)
        starts = periods_between(period, window.first, window.today)
        values: dict[date, int] = defaultdict(int)
        if window.watermark is not None:
            values.update(
                await repository.series(
                    session, Metric.ACTIVE_USERS, period, starts[0], window.today
                )
            )
        rows = await repository.live_active_days(session, window.watermark, starts[0], window.today)
        for (start, _), ids in (await _newly_active(session, window, period, rows)).items():
            values[start] += len(ids)
        return Series(
            metric="active_users",
            time_range=time_range.value,
            period=period.value,
            series=[SeriesPoint(period_start=start, value=values[start]) for start in starts],
        )

    key = f"active:{time_range.value}:{period.value}"
    return await _cached(state, key, Series, compute)


async def retention(session: AsyncSession, state: AppState, weeks: int) -> Retention:
    """Weekly cohorts of the last `weeks` weeks (this one included): of the accounts
    that signed up in week W, how many and what share were active in W, W+1, …"""

    async def compute() -> Retention:
        window = await _window(session, TimeRange.DAY)
        this_week = period_start(Period.WEEK, window.today)
        first = this_week - timedelta(weeks=weeks - 1)
        cohort_weeks = [first + timedelta(weeks=n) for n in range(weeks)]
        sizes: dict[date, int] = defaultdict(int)
        active: dict[tuple[date, date], int] = defaultdict(int)
        if window.watermark is not None:
            sizes.update(
                await repository.series(session, Metric.SIGNUPS, Period.WEEK, first, this_week)
            )
            for week, cohort_key, count in await repository.cohort_rows(session, first, this_week):
                active[(date.fromisoformat(cohort_key), week)] += count
        for day, count in await repository.live_events(
            session, Kind.USER_REGISTERED, window.watermark, first, window.today, UsageEvent.day
        ):
            sizes[period_start(Period.WEEK, day)] += int(count)
        rows = await repository.live_active_days(session, window.watermark, first, window.today)
        newly = await _newly_active(session, window, Period.WEEK, rows)
        for (week, signed_up_week), ids in newly.items():
            active[(signed_up_week, week)] += len(ids)
        cohorts = []
        for cohort in cohort_weeks:
            size = sizes[cohort]
            counts = [
                active[(cohort, cohort + timedelta(weeks=n))]
                for n in range((this_week - cohort).days // 7 + 1)
            ]
            cohorts.append(
                Cohort(
                    week=cohort,
                    size=size,
                    active=counts,
                    retention=[round(c / size, 4) if size else None for c in counts],
                )
            )
        return Retention(weeks=weeks, cohorts=cohorts)

    return await _cached(state, f"retention:{weeks}", Retention, compute)
