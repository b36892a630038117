"""Follows: idempotent follow and unfollow, exact follower counts, the followers and
following lists with the caller's own relation, and the profile counts and flag."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.events import Delivered
from beatmachine.core.state import AppState
from beatmachine.social.events import UserFollowed, UserUnfollowed
from beatmachine.social.models import Follow
from beatmachine.users.models import User
from tests.factories import ADMIN_OVERRIDES, Account, assert_error, register
from tests.jobs import settle
from tests.patterns.helpers import PATTERN_OVERRIDES
from tests.social.helpers import follow, unfollow

CONCURRENT_FOLLOWERS = 100


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, **ADMIN_OVERRIDES, "RATE_LIMIT_ANONYMOUS": 10_000}


async def people(
    client: httpx.AsyncClient,
    user_id: str,
    which: str,
    viewer: Account | None = None,
    query: str = "",
) -> dict[str, Any]:
    headers = viewer.headers if viewer else {}
    response = await client.get(f"/api/users/{user_id}/{which}{query}", headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def follow_rows(db: AsyncSession, followee_id: str) -> int:
    value = (
        await db.execute(
            select(func.count()).select_from(Follow).where(Follow.followee_id == followee_id)
        )
    ).scalar_one()
    await db.commit()
    return int(value)


async def test_following_answers_following_and_the_follower_count(
    client: httpx.AsyncClient, fan: Account, owner: Account
) -> None:
    response = await follow(client, fan, owner.id)

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "data": {"following": True, "followerCount": 1}}


async def test_following_twice_keeps_one_follow(
    client: httpx.AsyncClient, fan: Account, owner: Account, db: AsyncSession
) -> None:
    await follow(client, fan, owner.id)

    again = await follow(client, fan, owner.id)

    assert again.json()["data"] == {"following": True, "followerCount": 1}
    assert await follow_rows(db, owner.id) == 1


async def test_unfollowing_answers_not_following_and_the_count(
    client: httpx.AsyncClient, fan: Account, stranger: Account, owner: Account
) -> None:
    await follow(client, fan, owner.id)
    await follow(client, stranger, owner.id)

    response = await unfollow(client, fan, owner.id)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"following": False, "followerCount": 1}


async def test_unfollowing_someone_not_followed_changes_nothing(
    client: httpx.AsyncClient, fan: Account, owner: Account
) -> None:
    response = await unfollow(client, fan, owner.id)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"following": False, "followerCount": 0}


async def test_following_oneself_is_a_validation_error(
    client: httpx.AsyncClient, fan: Account, db: AsyncSession
) -> None:
    response = await follow(client, fan, fan.id)

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["path.user_id"]
    assert await follow_rows(db, fan.id) == 0


async def test_following_an_unknown_user_is_not_found(
    client: httpx.AsyncClient, fan: Account
) -> None:
    assert_error(await follow(client, fan, "usr_missing"), 404, "USER_NOT_FOUND")
    assert_error(await unfollow(client, fan, "usr_missing"), 404, "USER_NOT_FOUND")


async def test_following_needs_a_token(client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.post(f"/api/users/{owner.id}/follow")

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_many_users_following_at_once_are_counted_exactly(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    followers = await asyncio.gather(
        *(register(client, display_name=f"Fan {n}") for n in range(CONCURRENT_FOLLOWERS))
    )

    responses = await asyncio.gather(*(follow(client, fan, owner.id) for fan in followers))

    assert [r.status_code for r in responses] == [200] * CONCURRENT_FOLLOWERS
    # Each answer counts what its own transaction sees: itself, and those before it.
    assert all(1 <= r.json()["data"]["followerCount"] <= CONCURRENT_FOLLOWERS for r in responses)
    assert await follow_rows(db, owner.id) == CONCURRENT_FOLLOWERS
    profile = await client.get(f"/api/users/{owner.id}")
    assert profile.json()["data"]["stats"]["followers"] == CONCURRENT_FOLLOWERS


async def test_one_user_following_many_times_at_once_keeps_one_row(
    client: httpx.AsyncClient, fan: Account, owner: Account, db: AsyncSession
) -> None:
    responses = await asyncio.gather(*(follow(client, fan, owner.id) for _ in range(10)))

    assert {r.json()["data"]["followerCount"] for r in responses} == {1}
    assert await follow_rows(db, owner.id) == 1


# --- lists -------------------------------------------------------------------------------


async def test_followers_are_listed_newest_first(
    client: httpx.AsyncClient, fan: Account, stranger: Account, owner: Account
) -> None:
    await follow(client, fan, owner.id)
    await follow(client, stranger, owner.id)

    data = await people(client, owner.id, "followers")

    assert data["users"] == [
        {
            "id": stranger.id,
            "displayName": "Stranger",
            "avatar": None,
            "isFollowedByCurrentUser": False,
        },
        {"id": fan.id, "displayName": "Fan", "avatar": None, "isFollowedByCurrentUser": False},
    ]
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 2, "pages": 1}


async def test_following_is_listed_newest_first(
    client: httpx.AsyncClient, fan: Account, stranger: Account, owner: Account
) -> None:
    await follow(client, fan, owner.id)
    await follow(client, fan, stranger.id)

    data = await people(client, fan.id, "following")

    assert [u["id"] for u in data["users"]] == [stranger.id, owner.id]


async def test_lists_say_whom_the_caller_follows(
    client: httpx.AsyncClient, fan: Account, stranger: Account, owner: Account
) -> None:
    await follow(client, fan, owner.id)
    await follow(client, stranger, owner.id)
    await follow(client, owner, stranger.id)

    as_owner = await people(client, owner.id, "followers", owner)

    flags = {u["id"]: u["isFollowedByCurrentUser"] for u in as_owner["users"]}
    assert flags == {stranger.id: True, fan.id: False}


async def test_lists_are_paginated(client: httpx.AsyncClient, owner: Account) -> None:
    fans = [await register(client, display_name=f"Fan {n}") for n in range(5)]
    for fan in fans:
        await follow(client, fan, owner.id)

    data = await people(client, owner.id, "followers", query="?page=2&limit=2")

    assert [u["id"] for u in data["users"]] == [fans[2].id, fans[1].id]
    assert data["pagination"] == {"page": 2, "limit": 2, "total": 5, "pages": 3}


async def test_lists_of_an_unknown_user_are_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/usr_missing/followers")

    assert_error(response, 404, "USER_NOT_FOUND")


async def test_accounts_awaiting_deletion_are_neither_listed_nor_counted(
    client: httpx.AsyncClient, fan: Account, stranger: Account, owner: Account, db: AsyncSession
) -> None:
    await follow(client, fan, owner.id)
    await follow(client, stranger, owner.id)
    await db.execute(
        update(User)
        .where(User.id == fan.id)
        .values(deletion_scheduled_at=datetime.now(UTC) + timedelta(days=30))
    )
    await db.commit()

    data = await people(client, owner.id, "followers")

    assert [u["id"] for u in data["users"]] == [stranger.id]
    assert data["pagination"]["total"] == 1
    profile = await client.get(f"/api/users/{owner.id}")
    assert profile.json()["data"]["stats"]["followers"] == 1


# --- profiles ----------------------------------------------------------------------------


async def test_a_profile_says_whether_the_caller_follows_it(
    client: httpx.AsyncClient, fan: Account, stranger: Account, owner: Account
) -> None:
    await follow(client, fan, owner.id)

    as_fan = await client.get(f"/api/users/{owner.id}", headers=fan.headers)
    as_stranger = await client.get(f"/api/users/{owner.id}", headers=stranger.headers)
    anonymous = await client.get(f"/api/users/{owner.id}")

    assert as_fan.json()["data"]["isFollowing"] is True
    assert as_stranger.json()["data"]["isFollowing"] is False
    assert anonymous.json()["data"]["isFollowing"] is False


async def test_own_profile_counts_followers_and_following(
    client: httpx.AsyncClient, fan: Account, stranger: Account, owner: Account
) -> None:
    await follow(client, fan, owner.id)
    await follow(client, stranger, owner.id)
    await follow(client, owner, fan.id)

    me = await client.get("/api/users/me", headers=owner.headers)

    stats = me.json()["data"]["stats"]
    assert (stats["followers"], stats["following"]) == (2, 1)


async def test_following_and_unfollowing_record_their_events(
    client: httpx.AsyncClient, state: AppState, fan: Account, owner: Account
) -> None:
    heard: list[Any] = []

    async def keep(_session: AsyncSession, delivered: Delivered[Any]) -> None:
        heard.append(delivered.event)

    state.events.listen(UserFollowed, "test.followed", keep)
    state.events.listen(UserUnfollowed, "test.unfollowed", keep)

    await follow(client, fan, owner.id)
    await follow(client, fan, owner.id)  # a repeat records nothing
    await settle(state)
    await unfollow(client, fan, owner.id)
    await unfollow(client, fan, owner.id)
    await settle(state)

    assert heard == [
        UserFollowed(follower_id=fan.id, followee_id=owner.id),
        UserUnfollowed(follower_id=fan.id, followee_id=owner.id),
    ]


async def test_an_account_awaiting_deletion_cannot_be_followed(
    client: httpx.AsyncClient, fan: Account, owner: Account, db: AsyncSession
) -> None:
    await db.execute(
        update(User)
        .where(User.id == owner.id)
        .values(deletion_scheduled_at=datetime.now(UTC) + timedelta(days=30))
    )
    await db.commit()

    assert_error(await follow(client, fan, owner.id), 404, "USER_NOT_FOUND")
    assert_error(await client.get(f"/api/users/{owner.id}/following"), 404, "USER_NOT_FOUND")
    assert await follow_rows(db, owner.id) == 0


async def test_following_list_says_whom_the_caller_follows(
    client: httpx.AsyncClient, fan: Account, stranger: Account, owner: Account
) -> None:
    await follow(client, fan, owner.id)
    await follow(client, fan, stranger.id)
    await follow(client, owner, stranger.id)

    as_owner = await people(client, fan.id, "following", owner)
    anonymous = await people(client, fan.id, "following")

    assert {u["id"]: u["isFollowedByCurrentUser"] for u in as_owner["users"]} == {
        stranger.id: True,
        owner.id: False,
    }
    assert {u["isFollowedByCurrentUser"] for u in anonymous["users"]} == {False}


async def test_a_page_of_followers_costs_the_same_queries_however_many_it_holds(
    client: httpx.AsyncClient, state: AppState, owner: Account, stranger: Account
) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Only what reads follows: the caller's own session bookkeeping varies with time.
        if "follows" in statement:
            statements.append(statement)

    async def queries_for_followers_page() -> int:
        await settle(state)  # the feed's jobs read follows too
        statements.clear()
        event.listen(state.engine.sync_engine, "before_cursor_execute", count)
        try:
            await people(client, owner.id, "followers", stranger)
        finally:
            event.remove(state.engine.sync_engine, "before_cursor_execute", count)
        return len(statements)

    first = await register(client, display_name="First")
    await follow(client, first, owner.id)
    with_one = await queries_for_followers_page()
    for n in range(5):
        fan = await register(client, display_name=f"Fan {n}")
        await follow(client, fan, owner.id)
        await follow(client, stranger, fan.id)

    with_six = await queries_for_followers_page()

    assert with_six == with_one
