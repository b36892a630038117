"""Likes, plays and forks: the Part A counters, exact under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.patterns.models import Pattern, PatternLike
from tests.factories import Account, assert_error, register
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern, salsa_configuration

CONCURRENT_LIKERS = 8
CONCURRENT_PLAYS = 200


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, "RATE_LIMIT_ANONYMOUS": 10_000}


@pytest.fixture
async def public(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=True)


@pytest.fixture
async def private(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=False)


async def stored(db: AsyncSession, pattern_id: str) -> tuple[int, int, int]:
    """(plays, likes, forks) as stored in the patterns row."""
    row = (
        await db.execute(
            select(Pattern.plays_count, Pattern.likes_count, Pattern.forks_count).where(
                Pattern.id == pattern_id
            )
        )
    ).one()
    await db.commit()
    return int(row[0]), int(row[1]), int(row[2])


async def like_rows(db: AsyncSession, pattern_id: str) -> int:
    count = (
        await db.execute(
            select(func.count())
            .select_from(PatternLike)
            .where(PatternLike.pattern_id == pattern_id)
        )
    ).scalar_one()
    await db.commit()
    return int(count)


async def stats_of(
    client: httpx.AsyncClient, pattern_id: str, account: Account | None = None
) -> dict[str, Any]:
    headers = account.headers if account else {}
    response = await client.get(f"/api/patterns/{pattern_id}", headers=headers)
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()["data"]["stats"]
    return stats


# --- likes ---------------------------------------------------------------------------------


async def test_like_returns_liked_and_count(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "data": {"liked": True, "likeCount": 1}}
    assert await like_rows(db, public["id"]) == 1
    assert (await stored(db, public["id"]))[1] == 1


async def test_liking_twice_counts_once(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    await client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers)
    response = await client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"liked": True, "likeCount": 1}
    assert await like_rows(db, public["id"]) == 1
    assert (await stats_of(client, public["id"]))["likes"] == 1


async def test_unlike_returns_not_liked_and_count(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    await client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers)
    response = await client.delete(f"/api/patterns/{public['id']}/like", headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "data": {"liked": False, "likeCount": 0}}
    assert await like_rows(db, public["id"]) == 0
    assert (await stored(db, public["id"]))[1] == 0


async def test_unliking_twice_is_idempotent(
    client: httpx.AsyncClient,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
    db: AsyncSession,
) -> None:
    await client.post(f"/api/patterns/{public['id']}/like", headers=owner.headers)
    await client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers)
    await client.delete(f"/api/patterns/{public['id']}/like", headers=fan.headers)
    response = await client.delete(f"/api/patterns/{public['id']}/like", headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"liked": False, "likeCount": 1}
    assert await like_rows(db, public["id"]) == 1
    assert (await stored(db, public["id"]))[1] == 1


async def test_unliking_a_pattern_never_liked_keeps_the_count(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.delete(f"/api/patterns/{public['id']}/like", headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"liked": False, "likeCount": 0}
    assert (await stored(db, public["id"]))[1] == 0


async def test_liker_sees_is_liked_by_current_user(
    client: httpx.AsyncClient,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    await client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers)

    liker_view = await stats_of(client, public["id"], fan)
    owner_view = await stats_of(client, public["id"], owner)
    anonymous_view = await stats_of(client, public["id"])

    assert liker_view["isLikedByCurrentUser"] is True
    assert liker_view["likes"] == 1
    assert owner_view["isLikedByCurrentUser"] is False
    assert anonymous_view["isLikedByCurrentUser"] is False


async def test_unlike_clears_is_liked_by_current_user(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    await client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers)
    await client.delete(f"/api/patterns/{public['id']}/like", headers=fan.headers)

    stats = await stats_of(client, public["id"], fan)

    assert stats["isLikedByCurrentUser"] is False
    assert stats["likes"] == 0


async def test_like_of_someone_elses_private_pattern_is_not_found(
    client: httpx.AsyncClient, fan: Account, private: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(f"/api/patterns/{private['id']}/like", headers=fan.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert await like_rows(db, private["id"]) == 0
    assert (await stored(db, private["id"]))[1] == 0


async def test_owner_can_like_own_private_pattern(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    response = await client.post(f"/api/patterns/{private['id']}/like", headers=owner.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"liked": True, "likeCount": 1}


async def test_like_of_unknown_pattern_is_not_found(
    client: httpx.AsyncClient, fan: Account
) -> None:
    response = await client.post("/api/patterns/pat_doesnotexist/like", headers=fan.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_like_anonymously_requires_auth(
    client: httpx.AsyncClient, public: dict[str, Any], db: AsyncSession, method: str
) -> None:
    response = await client.request(method, f"/api/patterns/{public['id']}/like")

    assert_error(response, 401, "AUTH_REQUIRED")
    assert await like_rows(db, public["id"]) == 0


async def test_concurrent_likes_by_different_users_are_counted_exactly(
    client: httpx.AsyncClient, public: dict[str, Any], db: AsyncSession
) -> None:
    likers = [await register(client) for _ in range(CONCURRENT_LIKERS)]

    responses = await asyncio.gather(
        *(
            client.post(f"/api/patterns/{public['id']}/like", headers=liker.headers)
            for liker in likers
        )
    )

    assert [r.status_code for r in responses] == [200] * CONCURRENT_LIKERS
    counts = sorted(r.json()["data"]["likeCount"] for r in responses)
    assert counts[-1] == CONCURRENT_LIKERS
    assert len(set(counts)) == CONCURRENT_LIKERS  # every like saw its own increment
    assert await like_rows(db, public["id"]) == CONCURRENT_LIKERS
    assert (await stored(db, public["id"]))[1] == CONCURRENT_LIKERS
    assert (await stats_of(client, public["id"]))["likes"] == CONCURRENT_LIKERS


async def test_concurrent_duplicate_likes_of_one_user_count_once(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    responses = await asyncio.gather(
        *(client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers) for _ in range(5))
    )

    assert [r.status_code for r in responses] == [200] * 5
    assert await like_rows(db, public["id"]) == 1
    assert (await stored(db, public["id"]))[1] == 1


# --- plays ---------------------------------------------------------------------------------


async def test_anonymous_play_counts(
    client: httpx.AsyncClient, public: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(f"/api/patterns/{public['id']}/play")

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "data": {"playCount": 1}}
    assert (await stored(db, public["id"]))[0] == 1


async def test_authenticated_play_counts(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    await client.post(f"/api/patterns/{public['id']}/play")
    response = await client.post(f"/api/patterns/{public['id']}/play", headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"playCount": 2}
    assert (await stored(db, public["id"]))[0] == 2


async def test_concurrent_plays_are_counted_exactly(
    client: httpx.AsyncClient, public: dict[str, Any], db: AsyncSession
) -> None:
    responses = await asyncio.gather(
        *(client.post(f"/api/patterns/{public['id']}/play") for _ in range(CONCURRENT_PLAYS))
    )

    assert [r.status_code for r in responses] == [200] * CONCURRENT_PLAYS
    assert sorted(r.json()["data"]["playCount"] for r in responses) == list(
        range(1, CONCURRENT_PLAYS + 1)
    )
    assert (await stored(db, public["id"]))[0] == CONCURRENT_PLAYS
    assert (await stats_of(client, public["id"]))["plays"] == CONCURRENT_PLAYS


async def test_play_of_someone_elses_private_pattern_is_not_found(
    client: httpx.AsyncClient, fan: Account, private: dict[str, Any], db: AsyncSession
) -> None:
    anonymous = await client.post(f"/api/patterns/{private['id']}/play")
    other_user = await client.post(f"/api/patterns/{private['id']}/play", headers=fan.headers)

    assert_error(anonymous, 404, "PATTERN_NOT_FOUND")
    assert_error(other_user, 404, "PATTERN_NOT_FOUND")
    assert (await stored(db, private["id"]))[0] == 0


async def test_owner_can_play_own_private_pattern(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    response = await client.post(f"/api/patterns/{private['id']}/play", headers=owner.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"playCount": 1}


async def test_play_of_deleted_pattern_is_not_found(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    deleted = await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)
    assert deleted.status_code == 200, deleted.text

    response = await client.post(f"/api/patterns/{public['id']}/play")

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert (await stored(db, public["id"]))[0] == 0


async def test_like_of_deleted_pattern_is_not_found(
    client: httpx.AsyncClient,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
    db: AsyncSession,
) -> None:
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    response = await client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert await like_rows(db, public["id"]) == 0


# --- forks ---------------------------------------------------------------------------------


async def test_fork_creates_a_private_copy_for_the_caller(
    client: httpx.AsyncClient, fan: Account, owner: Account, db: AsyncSession
) -> None:
    configuration = salsa_configuration()
    original = await create_pattern(
        client,
        owner,
        title="Tumbao",
        description="Two-bar groove",
        bpm=195,
        keyNote=9,
        isPublic=True,
        configuration=configuration,
    )

    response = await client.post(f"/api/patterns/{original['id']}/fork", headers=fan.headers)

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert set(data) == {"id", "title", "originalId", "createdAt"}
    assert data["id"].startswith("pat_") and data["id"] != original["id"]
    assert data["title"] == "Tumbao (Fork)"
    assert data["originalId"] == original["id"]
    assert datetime.fromisoformat(data["createdAt"].replace("Z", "+00:00")).tzinfo == UTC
    copy = (await client.get(f"/api/patterns/{data['id']}", headers=fan.headers)).json()["data"]
    assert copy["author"]["id"] == fan.id
    assert copy["isPublic"] is False
    assert copy["flavor"] == "Salsa"
    assert copy["bpm"] == 195
    assert copy["keyNote"] == 9
    assert copy["description"] == "Two-bar groove"
    assert copy["configuration"] == configuration
    assert copy["stats"]["plays"] == 0 and copy["stats"]["likes"] == 0
    row = await db.get(Pattern, data["id"])
    assert row is not None and row.user_id == fan.id and row.original_id == original["id"]


async def test_fork_is_private_to_the_forker(
    client: httpx.AsyncClient, owner: Account, fan: Account, public: dict[str, Any]
) -> None:
    fork = await client.post(f"/api/patterns/{public['id']}/fork", headers=fan.headers)
    fork_id = fork.json()["data"]["id"]

    assert_error(await client.get(f"/api/patterns/{fork_id}"), 404, "PATTERN_NOT_FOUND")
    assert_error(
        await client.get(f"/api/patterns/{fork_id}", headers=owner.headers),
        404,
        "PATTERN_NOT_FOUND",
    )


async def test_fork_increments_the_originals_fork_count(
    client: httpx.AsyncClient,
    fan: Account,
    owner: Account,
    public: dict[str, Any],
    db: AsyncSession,
) -> None:
    await client.post(f"/api/patterns/{public['id']}/fork", headers=fan.headers)
    await client.post(f"/api/patterns/{public['id']}/fork", headers=owner.headers)

    assert (await stats_of(client, public["id"]))["forks"] == 2
    assert (await stored(db, public["id"]))[2] == 2


async def test_fork_of_someone_elses_private_pattern_is_not_found(
    client: httpx.AsyncClient, fan: Account, private: dict[str, Any], db: AsyncSession
) -> None:
    before = await db.scalar(select(func.count()).select_from(Pattern))

    response = await client.post(f"/api/patterns/{private['id']}/fork", headers=fan.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert await db.scalar(select(func.count()).select_from(Pattern)) == before
    assert (await stored(db, private["id"]))[2] == 0


async def test_owner_can_fork_own_private_pattern(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    response = await client.post(f"/api/patterns/{private['id']}/fork", headers=owner.headers)

    assert response.status_code == 201, response.text
    assert response.json()["data"]["originalId"] == private["id"]
    assert (await stats_of(client, private["id"], owner))["forks"] == 1


async def test_fork_of_a_200_character_title_stays_within_200(
    client: httpx.AsyncClient, owner: Account, fan: Account
) -> None:
    original = await create_pattern(client, owner, title="T" * 200)

    response = await client.post(f"/api/patterns/{original['id']}/fork", headers=fan.headers)

    assert response.status_code == 201, response.text
    title = response.json()["data"]["title"]
    assert len(title) == 200
    assert title.endswith(" (Fork)")
    assert title == "T" * (200 - len(" (Fork)")) + " (Fork)"


async def test_fork_anonymously_requires_auth(
    client: httpx.AsyncClient, public: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(f"/api/patterns/{public['id']}/fork")

    assert_error(response, 401, "AUTH_REQUIRED")
    assert (await stored(db, public["id"]))[2] == 0


async def test_fork_of_deleted_pattern_is_not_found(
    client: httpx.AsyncClient,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
    db: AsyncSession,
) -> None:
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)
    before = await db.scalar(select(func.count()).select_from(Pattern))

    response = await client.post(f"/api/patterns/{public['id']}/fork", headers=fan.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert await db.scalar(select(func.count()).select_from(Pattern)) == before
