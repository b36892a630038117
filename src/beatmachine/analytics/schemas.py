"""Response models of the analytics reports (also what their cache holds)."""

from __future__ import annotations

from datetime import date

from beatmachine.core.schemas import CamelModel


class InstrumentUsage(CamelModel):
    id: str
    title: str
    usage_count: int
    percentage: float


class PopularInstruments(CamelModel):
    time_range: str
    patterns_created: int
    instruments: list[InstrumentUsage]


class PatternAuthor(CamelModel):
    id: str
    display_name: str


class TrendingPatternOut(CamelModel):
    id: str
    title: str
    plays: int
    likes: int
    score: float
    author: PatternAuthor


class PopularPatterns(CamelModel):
    time_range: str
    patterns: list[TrendingPatternOut]


class TempoCount(CamelModel):
    bpm: int
    count: int


class TempoDistribution(CamelModel):
    time_range: str
    bucket: int
    flavor: str | None
    distribution: list[TempoCount]


class KeyCount(CamelModel):
    key_note: int
    name: str
    count: int
    percentage: float


class KeyDistribution(CamelModel):
    time_range: str
    flavor: str | None
    distribution: list[KeyCount]


class SeriesPoint(CamelModel):
    period_start: date
    value: int


class Series(CamelModel):
    """A number per day, week or month of a range, every period present (0 when none)."""

    metric: str
    time_range: str
    period: str
    series: list[SeriesPoint]


class Cohort(CamelModel):
    week: date
    size: int
    # The share of the cohort active in its week 0 (the sign-up week), 1, 2, …, as far
    # as the weeks have come; null where the cohort is empty.
    retention: list[float | None]
    active: list[int]


class Retention(CamelModel):
    weeks: int
    cohorts: list[Cohort]
