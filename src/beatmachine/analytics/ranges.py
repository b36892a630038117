"""Time ranges of the reports and the calendar periods rollups are kept for: pure date
arithmetic, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class TimeRange(StrEnum):
    """What `timeRange` may be: today (UTC), the last 7, 30 or 365 days including today,
    or everything."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    ALL = "all"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # Monday to Sunday
    MONTH = "month"
    YEAR = "year"


# Days a range covers, ending today (None: from the first day there is data for).
RANGE_DAYS: dict[TimeRange, int | None] = {
    TimeRange.DAY: 1,
    TimeRange.WEEK: 7,
    TimeRange.MONTH: 30,
    TimeRange.YEAR: 365,
    TimeRange.ALL: None,
}
# The trending score's half-life in each range, in days: a play or like that many days
# old counts half as much as one today (None: no decay inside one day).
HALF_LIFE_DAYS: dict[TimeRange, float | None] = {
    TimeRange.DAY: None,
    TimeRange.WEEK: 2.0,
    TimeRange.MONTH: 7.0,
    TimeRange.YEAR: 60.0,
    TimeRange.ALL: 180.0,
}
LIKE_WEIGHT = 3  # a like counts as much as this many plays in the trending score


def range_start(time_range: TimeRange, today: date, first_day: date | None) -> date:
    """The first day of `time_range` ending `today`; for `all`, `first_day` (today when
    there is no data yet)."""
    days = RANGE_DAYS[time_range]
    if days is None:
        return min(first_day, today) if first_day is not None else today
    return today - timedelta(days=days - 1)


def in_window(time_range: TimeRange, day: date, today: date) -> bool:
    """Whether `day` is inside `time_range` as it ends `today`."""
    days = RANGE_DAYS[time_range]
    return day <= today and (days is None or day > today - timedelta(days=days))


def decay(time_range: TimeRange, day: date, today: date) -> float:
    """The weight of one play on `day` in the trending score of `time_range` today."""
    half_life = HALF_LIFE_DAYS[time_range]
    if half_life is None:
        return 1.0
    return float(2.0 ** (-(today - day).days / half_life))


def period_start(period: Period, day: date) -> date:
    """The first day of the `period` that holds `day`."""
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def period_end(period: Period, start: date) -> date:
    """The last day of the `period` that starts on `start`."""
    if period is Period.DAY:
        return start
    if period is Period.WEEK:
        return start + timedelta(days=6)
    if period is Period.MONTH:
        following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return following - timedelta(days=1)
    return start.replace(month=12, day=31)


def periods_between(period: Period, first: date, last: date) -> list[date]:
    """The starts of every `period` that overlaps the days `first` to `last`."""
    starts = []
    start = period_start(period, first)
    while start <= last:
        starts.append(start)
        start = period_end(period, start) + timedelta(days=1)
    return starts


@dataclass(frozen=True)
class Tile:
    """A whole period whose rollup stands for its days in a sum over a range."""

    period: Period
    start: date


def tiles(first: date, last: date) -> list[Tile]:
    """The fewest whole years, months and days that cover `first` to `last` exactly: a
    sum over a year reads about 70 rollup rows per key rather than 365."""
    covered: list[Tile] = []
    day = first
    while day <= last:
        for period in (Period.YEAR, Period.MONTH):
            if period_start(period, day) == day and period_end(period, day) <= last:
                covered.append(Tile(period, day))
                day = period_end(period, day) + timedelta(days=1)
                break
        else:
            covered.append(Tile(Period.DAY, day))
            day += timedelta(days=1)
    return covered
