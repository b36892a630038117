"""What the admin dashboard shows for a range: every report it charts, and each chart's
data as rows (what its CSV download holds)."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import TypeVar

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


Report = (
    Series | PopularInstruments | TempoDistribution | KeyDistribution | Retention | PopularPatterns
)
R = TypeVar("R", bound=Report)


async def _report(
    session: AsyncSession, state: AppState, time_range: TimeRange, chart: str
) -> Report:
    period = SERIES_PERIOD[time_range]
    match chart:
        case "active-users":
            return await active_users(session, state, time_range, period)
        case "signups" | "plays":
            return await series(session, state, chart, time_range, period)
        case "instruments":
            return await popular_instruments(session, state, time_range, CHART_LIMIT)
        case "tempo":
            return await tempo_distribution(session, state, time_range, TEMPO_BUCKET, None)
        case "keys":
            return await key_distribution(session, state, time_range, None)
        case "retention":
            return await retention(session, state, retention_weeks(time_range))
        case "trending":
            return await popular_patterns(session, state, time_range, CHART_LIMIT)
    raise ValueError(f"no such chart: {chart}")


async def dashboard(session: AsyncSession, state: AppState, time_range: TimeRange) -> Dashboard:
    """Every report of the dashboard for `time_range`."""
    reports = {chart: await _report(session, state, time_range, chart) for chart in CHARTS}
    return Dashboard(
        time_range=time_range,
        active_users=_of(Series, reports["active-users"]),
        signups=_of(Series, reports["signups"]),
        plays=_of(Series, reports["plays"]),
        instruments=_of(PopularInstruments, reports["instruments"]),
        tempo=_of(TempoDistribution, reports["tempo"]),
        keys=_of(KeyDistribution, reports["keys"]),
        retention=_of(Retention, reports["retention"]),
        trending=_of(PopularPatterns, reports["trending"]),
    )


def _of(kind: type[R], report: Report) -> R:
    assert isinstance(report, kind)
    return report


async def chart_rows(
    session: AsyncSession, state: AppState, time_range: TimeRange, chart: str
) -> tuple[list[str], list[list[str]]]:
    """The header and rows of one chart's data (a name of CHARTS) for `time_range`,
    computing that chart's report only."""
    return _rows(await _report(session, state, time_range, chart))


def _rows(report: Report) -> tuple[list[str], list[list[str]]]:
    if isinstance(report, Series):
        return ["periodStart", report.metric], [
            [point.period_start.isoformat(), str(point.value)] for point in report.series
        ]
    if isinstance(report, PopularInstruments):
        return ["id", "title", "usageCount", "percentage"], [
            [i.id, i.title, str(i.usage_count), f"{i.percentage:g}"] for i in report.instruments
        ]
    if isinstance(report, TempoDistribution):
        return ["bpm", "count"], [[str(t.bpm), str(t.count)] for t in report.distribution]
    if isinstance(report, KeyDistribution):
        return ["keyNote", "name", "count", "percentage"], [
            [str(k.key_note), k.name, str(k.count), f"{k.percentage:g}"]
            for k in report.distribution
        ]
    if isinstance(report, Retention):
        weeks = len(report.cohorts)
        header = ["week", "size", *(f"week{n}" for n in range(weeks))]
        return header, [
            [
                cohort.week.isoformat(),
                str(cohort.size),
                *("" if share is None else f"{share:g}" for share in cohort.retention),
            ]
            for cohort in report.cohorts
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
        for p in report.patterns
    ]
