"""The analytics endpoints on known usage: exact numbers, the same whether the usage is
still live or rolled up; private and deleted patterns never trend; admin reports only
for admins; bad parameters refused."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics import service
from beatmachine.analytics.models import UsageEvent, UsageEventInstrument
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from tests.analytics.helpers import Usage, known_usage, play, report
from tests.factories import Account, assert_error, validation_fields
from tests.jobs import settle

# Every report of known usage: public, then admin.
PUBLIC_REPORTS = [
    "popular-instruments?timeRange=week",
    "popular-patterns?timeRange=week",
    "tempo-distribution?timeRange=week",
    "tempo-distribution?timeRange=all&bucket=10",
    "tempo-distribution?timeRange=day&flavor=Salsa",
    "key-distribution?timeRange=month",
]
ADMIN_REPORTS = [
    "active-users?timeRange=week",
    "active-users?timeRange=year&period=month",
    "signups?timeRange=week",
    "plays?timeRange=week&period=week",
    "retention?weeks=3",
]


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _week(values: dict[date, int]) -> list[dict[str, object]]:
    today = utcnow().date()
    days = [today - timedelta(days=n) for n in range(6, -1, -1)]
    return [{"periodStart": day.isoformat(), "value": values.get(day, 0)} for day in days]


@pytest.mark.usefixtures("usage")
async def test_popular_instruments_count_the_patterns_created_that_switch_them_on(
    client: httpx.AsyncClient,
) -> None:
    data = await report(client, "popular-instruments?timeRange=week")

    assert data == {
        "timeRange": "week",
        "patternsCreated": 3,
        "instruments": [
            {"id": "clave", "title": "Clave", "usageCount": 2, "percentage": 66.67},
            {"id": "cowbell", "title": "Cowbell", "usageCount": 1, "percentage": 33.33},
            {"id": "guira", "title": "Güira", "usageCount": 1, "percentage": 33.33},
            {"id": "tambora", "title": "Tambora", "usageCount": 1, "percentage": 33.33},
        ],
    }


@pytest.mark.usefixtures("usage")
async def test_popular_instruments_stop_at_the_limit(client: httpx.AsyncClient) -> None:
    data = await report(client, "popular-instruments?timeRange=day&limit=2")

    assert [i["id"] for i in data["instruments"]] == ["clave", "cowbell"]


@pytest.mark.usefixtures("usage")
async def test_tempo_distribution_counts_patterns_per_bpm(client: httpx.AsyncClient) -> None:
    data = await report(client, "tempo-distribution?timeRange=week")

    assert data == {
        "timeRange": "week",
        "bucket": 1,
        "flavor": None,
        "distribution": [
            {"bpm": 150, "count": 1},
            {"bpm": 180, "count": 1},
            {"bpm": 182, "count": 1},
        ],
    }


@pytest.mark.usefixtures("usage")
async def test_tempo_distribution_in_buckets_is_named_by_the_lowest_tempo(
    client: httpx.AsyncClient,
) -> None:
    data = await report(client, "tempo-distribution?timeRange=all&bucket=10")

    assert data["distribution"] == [{"bpm": 150, "count": 1}, {"bpm": 180, "count": 2}]


@pytest.mark.usefixtures("usage")
async def test_tempo_distribution_of_one_flavor(client: httpx.AsyncClient) -> None:
    data = await report(client, "tempo-distribution?timeRange=day&flavor=Merengue&bucket=5")

    assert data["flavor"] == "Merengue"
    assert data["distribution"] == [{"bpm": 150, "count": 1}]


@pytest.mark.usefixtures("usage")
async def test_key_distribution_lists_every_key_with_its_share(
    client: httpx.AsyncClient,
) -> None:
    data = await report(client, "key-distribution?timeRange=month")

    counts = {k["name"]: (k["count"], k["percentage"]) for k in data["distribution"]}
    assert [k["keyNote"] for k in data["distribution"]] == list(range(12))
    assert counts["F"] == (2, 66.67)
    assert counts["C"] == (1, 33.33)
    assert sum(count for count, _ in counts.values()) == 3


async def test_popular_patterns_rank_public_patterns_by_score(
    client: httpx.AsyncClient, usage: Usage, owner: Account
) -> None:
    data = await report(client, "popular-patterns?timeRange=week")

    author = {"id": owner.id, "displayName": "Owner"}
    assert data == {
        "timeRange": "week",
        "patterns": [
            # 1 play and 2 likes (3 each) score 7; 3 plays and 1 like score 6.
            {
                "id": usage.son,
                "title": "Son",
                "plays": 1,
                "likes": 2,
                "score": 7.0,
                "author": author,
            },
            {
                "id": usage.tumbao,
                "title": "Tumbao",
                "plays": 3,
                "likes": 1,
                "score": 6.0,
                "author": author,
            },
        ],
    }


async def test_plays_since_the_rollup_lift_a_pattern_above_the_rolled_up_top(
    client: httpx.AsyncClient, state: AppState, usage: Usage, other: Account
) -> None:
    await service.roll_up(state)  # son 7, tumbao 6
    for _ in range(2):
        await play(client, usage.tumbao, other)
    await settle(state)

    data = await report(client, "popular-patterns?timeRange=week&limit=1")

    assert [(p["id"], p["plays"], p["score"]) for p in data["patterns"]] == [(usage.tumbao, 5, 8.0)]


async def test_a_pattern_played_since_more_than_the_whole_top_scored_rises_above_it(
    client: httpx.AsyncClient, state: AppState, usage: Usage, other: Account
) -> None:
    await service.roll_up(state)
    for _ in range(8):  # more than son's 7 alone
        await play(client, usage.tumbao, other)
    await settle(state)

    data = await report(client, "popular-patterns?timeRange=week&limit=1")

    assert [(p["id"], p["plays"], p["score"]) for p in data["patterns"]] == [
        (usage.tumbao, 11, 14.0)
    ]


async def test_a_pattern_that_ties_the_rolled_up_top_since_goes_first_with_more_plays(
    client: httpx.AsyncClient, state: AppState, usage: Usage, other: Account
) -> None:
    await service.roll_up(state)
    await play(client, usage.tumbao, other)  # 7, tied with son: more plays go first
    await settle(state)

    data = await report(client, "popular-patterns?timeRange=week&limit=1")

    assert [(p["id"], p["plays"], p["score"]) for p in data["patterns"]] == [(usage.tumbao, 4, 7.0)]


async def test_a_pattern_made_private_or_deleted_leaves_the_trending_list(
    client: httpx.AsyncClient, state: AppState, usage: Usage, owner: Account
) -> None:
    await service.roll_up(state)
    response = await client.put(
        f"/api/patterns/{usage.son}", json={"isPublic": False}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    response = await client.delete(f"/api/patterns/{usage.tumbao}", headers=owner.headers)
    assert response.status_code == 200, response.text

    data = await report(client, "popular-patterns?timeRange=all")

    assert data["patterns"] == []


@pytest.mark.usefixtures("usage")
async def test_admins_see_plays_signups_and_active_accounts_per_day(
    client: httpx.AsyncClient, admin: Account
) -> None:
    today = utcnow().date()

    plays = await report(client, "plays?timeRange=week", admin)
    signups = await report(client, "signups?timeRange=week", admin)
    active = await report(client, "active-users?timeRange=week", admin)

    assert plays == {
        "metric": "plays",
        "timeRange": "week",
        "period": "day",
        "series": _week({today: 6}),
    }
    # The admin, the owner, the other and the stranger registered (and so were active).
    assert signups["series"] == _week({today: 4})
    assert active["series"] == _week({today: 4})


@pytest.mark.usefixtures("usage")
async def test_weekly_and_monthly_active_accounts_count_each_account_once(
    client: httpx.AsyncClient, admin: Account, other: Account
) -> None:
    response = await client.post(
        "/api/auth/login", json={"email": other.email, "password": other.password}
    )
    assert response.status_code == 200, response.text

    weekly = await report(client, "active-users?timeRange=week&period=week", admin)
    monthly = await report(client, "active-users?timeRange=month&period=month", admin)

    assert weekly["series"][-1] == {
        "periodStart": _monday(utcnow().date()).isoformat(),
        "value": 4,
    }
    assert monthly["series"][-1]["value"] == 4


@pytest.mark.usefixtures("usage")
async def test_retention_shows_this_weeks_cohort_active_in_its_first_week(
    client: httpx.AsyncClient, admin: Account
) -> None:
    data = await report(client, "retention?weeks=2", admin)

    this_week = _monday(utcnow().date())
    assert data == {
        "weeks": 2,
        "cohorts": [
            {
                "week": (this_week - timedelta(weeks=1)).isoformat(),
                "size": 0,
                "retention": [None, None],
                "active": [0, 0],
            },
            {"week": this_week.isoformat(), "size": 4, "retention": [1.0], "active": [4]},
        ],
    }


@pytest.mark.parametrize("path", PUBLIC_REPORTS + ADMIN_REPORTS)
async def test_an_answer_is_the_same_from_the_rollups_as_from_live_events(
    client: httpx.AsyncClient, state: AppState, usage: Usage, admin: Account, path: str
) -> None:
    live = await report(client, path, admin)

    await service.roll_up(state)
    rolled = await report(client, path, admin)

    assert rolled == live


@pytest.mark.parametrize("path", PUBLIC_REPORTS)
async def test_new_usage_adds_to_rolled_up_usage(
    client: httpx.AsyncClient,
    state: AppState,
    usage: Usage,
    owner: Account,
    other: Account,
    stranger: Account,
    path: str,
) -> None:
    await service.roll_up(state)
    await known_usage(client, owner, other, stranger)
    await settle(state)
    half_live = await report(client, path)

    await service.roll_up(state)

    assert await report(client, path) == half_live


@pytest.mark.parametrize("path", ADMIN_REPORTS)
async def test_admin_reports_refuse_anonymous_callers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(f"/api/analytics/{path}")

    assert_error(response, 401, "AUTH_REQUIRED")


@pytest.mark.parametrize("path", ADMIN_REPORTS)
async def test_admin_reports_refuse_other_users(
    client: httpx.AsyncClient, other: Account, path: str
) -> None:
    response = await client.get(f"/api/analytics/{path}", headers=other.headers)

    assert_error(response, 403, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("popular-instruments?timeRange=decade", "query.timeRange"),
        ("popular-instruments?limit=0", "query.limit"),
        ("popular-instruments?limit=101", "query.limit"),
        ("popular-patterns?timeRange=", "query.timeRange"),
        ("popular-patterns?limit=x", "query.limit"),
        ("tempo-distribution?bucket=3", "query.bucket"),
        ("tempo-distribution?flavor=Tango", "query.flavor"),
        ("key-distribution?flavor=", "query.flavor"),
        ("key-distribution?timeRange=DAY", "query.timeRange"),
    ],
)
async def test_bad_parameters_are_refused(client: httpx.AsyncClient, path: str, field: str) -> None:
    response = await client.get(f"/api/analytics/{path}")

    assert_error(response, 422, "VALIDATION_ERROR")
    assert field in validation_fields(response)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("active-users?period=year", "query.period"),
        ("plays?timeRange=hour", "query.timeRange"),
        ("retention?weeks=0", "query.weeks"),
        ("retention?weeks=53", "query.weeks"),
    ],
)
async def test_bad_admin_parameters_are_refused(
    client: httpx.AsyncClient, admin: Account, path: str, field: str
) -> None:
    response = await client.get(f"/api/analytics/{path}", headers=admin.headers)

    assert_error(response, 422, "VALIDATION_ERROR")
    assert field in validation_fields(response)


class TestCache:
    @pytest.fixture
    def settings_overrides(self, settings_overrides: dict[str, object]) -> dict[str, object]:
        return {**settings_overrides, "ANALYTICS_CACHE_TTL": 3600}

    async def test_an_answer_is_served_from_the_cache_until_it_expires(
        self, client: httpx.AsyncClient, state: AppState, usage: Usage, other: Account
    ) -> None:
        first = await report(client, "popular-patterns?timeRange=week")
        await play(client, usage.tumbao, other)
        await settle(state)

        again = await report(client, "popular-patterns?timeRange=week")
        await state.cache.delete("analytics:v1:patterns:week:10")
        fresh = await report(client, "popular-patterns?timeRange=week")

        assert again == first
        # Both score 7 now; the one with more plays comes first.
        assert [p["plays"] for p in fresh["patterns"]] == [4, 1]


async def test_a_saved_pattern_is_recorded_with_its_instruments_but_counts_no_creation(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, usage: Usage, owner: Account
) -> None:
    response = await client.put(
        f"/api/patterns/{usage.son}", json={"bpm": 200}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    await settle(state)
    saved = await db.execute(
        select(UsageEvent.bpm, UsageEventInstrument.instrument)
        .join(UsageEventInstrument, UsageEventInstrument.event_id == UsageEvent.id)
        .where(UsageEvent.kind == "pattern_saved")
    )
    rows = saved.all()
    await db.commit()

    assert [tuple(row) for row in rows] == [(200, "clave")]
    live = await report(client, "popular-instruments?timeRange=week")
    await service.roll_up(state)
    rolled = await report(client, "popular-instruments?timeRange=week")
    assert live == rolled
    assert rolled["patternsCreated"] == 3
    assert rolled["instruments"][0] == {
        "id": "clave",
        "title": "Clave",
        "usageCount": 2,
        "percentage": 66.67,
    }
