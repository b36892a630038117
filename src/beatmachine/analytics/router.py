"""HTTP routes of the analytics reports: public ones (instruments, patterns, tempos,
keys) and, for administrators, engagement (active accounts, sign-ups, plays, retention)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from beatmachine.analytics import service
from beatmachine.analytics.ranges import Period, TimeRange
from beatmachine.analytics.schemas import (
    KeyDistribution,
    PopularInstruments,
    PopularPatterns,
    Retention,
    Series,
    TempoDistribution,
)
from beatmachine.auth.dependencies import AdminUser
from beatmachine.core.db import SessionDep
from beatmachine.core.errors import ValidationFailed
from beatmachine.core.schemas import Envelope, error_responses, ok
from beatmachine.core.state import StateDep
from beatmachine.machines import service as machines_service

router = APIRouter(prefix="/analytics", tags=["analytics"])

RangeQuery = Annotated[
    TimeRange,
    Query(
        alias="timeRange",
        description="today (UTC), the last 7, 30 or 365 days including today, or all time",
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=100)]
PeriodQuery = Annotated[
    Literal["day", "week", "month"], Query(description="one point per day, week or month")
]
FlavorQuery = Annotated[str | None, Query(min_length=1, max_length=50)]
BUCKETS = (1, 5, 10)


def _bucket(value: int) -> int:
    if value not in BUCKETS:
        raise ValueError("must be 1, 5 or 10")
    return value


BucketQuery = Annotated[
    int, Query(ge=1, le=10, description="bpm per bucket: 1, 5 or 10"), AfterValidator(_bucket)
]
ADMIN_ERRORS = (401, 403)


async def _known_flavor(session: SessionDep, flavor: str | None) -> str | None:
    if flavor is not None and flavor not in await machines_service.known_flavors(session):
        raise ValidationFailed(
            details={
                "fields": [
                    {
                        "field": "query.flavor",
                        "message": "must be the flavor of a machine the server knows",
                        "type": "unknown_flavor",
                    }
                ]
            }
        )
    return flavor


@router.get("/popular-instruments", response_model=Envelope[PopularInstruments])
async def popular_instruments(
    session: SessionDep,
    state: StateDep,
    time_range: RangeQuery = TimeRange.WEEK,
    limit: LimitQuery = 10,
) -> Envelope[PopularInstruments]:
    """The instruments switched on by the most patterns created in the range;
    `percentage` is the share of those patterns (in percent) that switch it on."""
    return ok(await service.popular_instruments(session, state, time_range, limit))


@router.get("/popular-patterns", response_model=Envelope[PopularPatterns])
async def popular_patterns(
    session: SessionDep,
    state: StateDep,
    time_range: RangeQuery = TimeRange.WEEK,
    limit: LimitQuery = 10,
) -> Envelope[PopularPatterns]:
    """Trending public patterns: plays and likes in the range, ranked by a score in which
    recent plays and likes count more (see the API docs)."""
    return ok(await service.popular_patterns(session, state, time_range, limit))


@router.get("/tempo-distribution", response_model=Envelope[TempoDistribution])
async def tempo_distribution(
    session: SessionDep,
    state: StateDep,
    time_range: RangeQuery = TimeRange.WEEK,
    bucket: BucketQuery = 1,
    flavor: FlavorQuery = None,
) -> Envelope[TempoDistribution]:
    """Patterns created in the range per tempo, or per bucket of 5 or 10 bpm (named by
    its lowest tempo), of one flavor if given."""
    flavor = await _known_flavor(session, flavor)
    return ok(await service.tempo_distribution(session, state, time_range, bucket, flavor))


@router.get("/key-distribution", response_model=Envelope[KeyDistribution])
async def key_distribution(
    session: SessionDep,
    state: StateDep,
    time_range: RangeQuery = TimeRange.WEEK,
    flavor: FlavorQuery = None,
) -> Envelope[KeyDistribution]:
    """Patterns created in the range per key (0 = C … 11 = B), of one flavor if given."""
    flavor = await _known_flavor(session, flavor)
    return ok(await service.key_distribution(session, state, time_range, flavor))


@router.get(
    "/active-users",
    response_model=Envelope[Series],
    responses=error_responses(*ADMIN_ERRORS),
)
async def active_users(
    session: SessionDep,
    state: StateDep,
    _admin: AdminUser,
    time_range: RangeQuery = TimeRange.MONTH,
    period: PeriodQuery = "day",
) -> Envelope[Series]:
    """Admin: distinct accounts active per day (daily active users), week (weekly) or
    month (monthly) of the range."""
    return ok(await service.active_users(session, state, time_range, Period(period)))


def _series_route(name: str, summary: str) -> None:
    """`GET /analytics/<name>`: admin, one count per period of the range."""

    async def counts(
        session: SessionDep,
        state: StateDep,
        _admin: AdminUser,
        time_range: RangeQuery = TimeRange.MONTH,
        period: PeriodQuery = "day",
    ) -> Envelope[Series]:
        return ok(await service.series(session, state, name, time_range, Period(period)))

    counts.__doc__ = summary
    router.add_api_route(
        f"/{name}",
        counts,
        methods=["GET"],
        name=name,
        response_model=Envelope[Series],
        responses=error_responses(*ADMIN_ERRORS),
    )


_series_route("signups", "Admin: accounts registered per day, week or month of the range.")
_series_route("plays", "Admin: plays per day, week or month of the range.")


@router.get(
    "/retention",
    response_model=Envelope[Retention],
    responses=error_responses(*ADMIN_ERRORS),
)
async def retention(
    session: SessionDep,
    state: StateDep,
    _admin: AdminUser,
    weeks: Annotated[int, Query(ge=1, le=52, description="cohorts, this week's included")] = 8,
) -> Envelope[Retention]:
    """Admin: weekly retention cohorts: of the accounts that signed up in week W, how
    many and what share were active in W and each week after it."""
    return ok(await service.retention(session, state, weeks))
