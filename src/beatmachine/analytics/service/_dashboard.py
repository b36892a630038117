"""What the admin dashboard shows for a range: every report it charts, and each chart's
data as rows (what its CSV download holds)."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics.ranges import RANGE_DAYS, Period, TimeRange
from beatmachine.analytics.schemas import (
    KeyDistribution,
    PopularInstruments,
    PopularPatterns,
    Retention,
    Series,
    TempoDistribution,
)
from beatmachine.analytics.service._reports import (
    active_users,
    key_distribution,
    popular_instruments,
    popular_patterns,
    retention,
    series,
    tempo_distribution,
)
from beatmachine.core.state import AppState

TEMPO_BUCKET = 5
CHART_LIMIT = 15
# One point per day up to a month, per week for a year, per month for all time.
SERIES_PERIOD = {
    TimeRange.DAY: Period.DAY,
    TimeRange.WEEK: Period.DAY,
    TimeRange.MONTH: Period.DAY,
    TimeRange.YEAR: Period.WEEK,
    TimeRange.ALL: Period.MONTH,
}
CHARTS = (
    "active-users",
    "signups",
    "plays",
    "instruments",
    "tempo",
    "keys",
    "retention",
    "trending",
)


@dataclass(frozen=True)
class Dashboard:
    time_range: TimeRange
    active_users: Series
    signups: Series
    plays: Series
    instruments: PopularInstruments
    tempo: TempoDistribution
    keys: KeyDistribution
    retention: Retention
    trending: PopularPatterns


def retention_weeks(time_range: TimeRange) -> int:
    """The cohorts the range covers: its weeks, at least 2, at most 52."""
    days = RANGE_DAYS[time_range] or 365
    return max(2, min(52, ceil(days / 7)))


async def dashboard(session: AsyncSession, state: AppState, time_range: TimeRange) -> Dashboard:
    """Every report of the dashboard for `time_range`."""
    period = SERIES_PERIOD[time_range]
    return Dashboard(
        time_range=time_range,
        active_users=await active_users(session, state, time_range, period),
        signups=await series(session, state, "signups", time_range, period),
        plays=await series(session, state, "plays", time_range, period),
        instruments=await popular_instruments(session, state, time_range, CHART_LIMIT),
        tempo=await tempo_distribution(session, state, time_range, TEMPO_BUCKET, None),
        keys=await key_distribution(session, state, time_range, None),
        retention=await retention(session, state, retention_weeks(time_range)),
        trending=await popular_patterns(session, state, time_range, CHART_LIMIT),
    )


def chart_rows(board: Dashboard, chart: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of one chart's data."""
    if chart in ("active-users", "signups", "plays"):
        points = {"active-users": board.active_users, "signups": board.signups}.get(
            chart, board.plays
        )
        return ["periodStart", points.metric], [
            [point.period_start.isoformat(), str(point.value)] for point in points.series
        ]
    if chart == "instruments":
        return ["id", "title", "usageCount", "percentage"], [
            [i.id, i.title, str(i.usage_count), f"{i.percentage:g}"]
            for i in board.instruments.instruments
        ]
    if chart == "tempo":
        return ["bpm", "count"], [[str(t.bpm), str(t.count)] for t in board.tempo.distribution]
    if chart == "keys":
        return ["keyNote", "name", "count", "percentage"], [
            [str(k.key_note), k.name, str(k.count), f"{k.percentage:g}"]
            for k in board.keys.distribution
        ]
    if chart == "retention":
        weeks = len(board.retention.cohorts)
        header = ["week", "size", *(f"week{n}" for n in range(weeks))]
        return header, [
            [
                cohort.week.isoformat(),
                str(cohort.size),
                *("" if share is None else f"{share:g}" for share in cohort.retention),
            ]
            for cohort in board.retention.cohorts
        ]
    return ["id", "title", "authorId", "author", "plays", "likes", "score"], [
        [
            p.id,
            p.title,
            p.author.id,
            p.author.display_name,
            str(p.plays),
            str(p.likes),
            f"{p.score:g}",
        ]
        for p in board.trending.patterns
    ]
