"""Soft delete: a deleted pattern disappears at once, can be restored by its owner for
7 days, and is purged after that."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.state import AppState
from beatmachine.patterns import service
from beatmachine.patterns.models import Pattern, PatternLike, PatternVersion, ShareLink
from tests.factories import Account, assert_error
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return PATTERN_OVERRIDES


@pytest.fixture
async def pattern(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(
        client, owner, title="Mambo Nocturno", description="late night", isPublic=True
    )


async def delete(client: httpx.AsyncClient, account: Account, pattern_id: str) -> None:
    response = await client.delete(f"/api/patterns/{pattern_id}", headers=account.headers)
    assert response.status_code == 200, response.text


async def deleted_at(db: AsyncSession, pattern_id: str) -> datetime | None:
    value: datetime | None = (
        await db.execute(select(Pattern.deleted_at).where(Pattern.id == pattern_id))
    ).scalar_one()
    await db.commit()
    return value


async def age_deletion(db: AsyncSession, pattern_id: str, days: int) -> None:
    """Pretend the pattern was deleted `days` ago."""
    await db.execute(
        update(Pattern)
        .where(Pattern.id == pattern_id)
        .values(deleted_at=datetime.now(UTC) - timedelta(days=days))
    )
    await db.commit()


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]["patterns"]]


async def count(db: AsyncSession, model: Any, pattern_id: str) -> int:
    column = model.id if model is Pattern else model.pattern_id
    value = (await db.execute(select(func.count()).where(column == pattern_id))).scalar_one()
    await db.commit()
    return int(value)


# --- delete --------------------------------------------------------------------------------


async def test_delete_answers_with_a_message_and_marks_the_row(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.delete(f"/api/patterns/{pattern['id']}", headers=owner.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert set(body["data"]) == {"message"} and body["data"]["message"]
    assert await deleted_at(db, pattern["id"]) is not None


async def test_deleted_pattern_is_not_found_at_once(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    assert (await client.get(f"/api/patterns/{pattern['id']}")).status_code == 200  # cached

    await delete(client, owner, pattern["id"])

    assert_error(await client.get(f"/api/patterns/{pattern['id']}"), 404, "PATTERN_NOT_FOUND")
    assert_error(
        await client.get(f"/api/patterns/{pattern['id']}", headers=owner.headers),
        404,
        "PATTERN_NOT_FOUND",
    )


async def test_deleted_pattern_leaves_the_public_listing(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    kept = await create_pattern(client, owner)
    assert set(ids(await client.get("/api/patterns"))) == {pattern["id"], kept["id"]}

    await delete(client, owner, pattern["id"])

    listing = await client.get("/api/patterns")
    assert ids(listing) == [kept["id"]]
    assert listing.json()["data"]["pagination"]["total"] == 1
    assert ids(await client.get("/api/patterns", params={"userId": owner.id})) == [kept["id"]]


async def test_deleted_pattern_leaves_search_results(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    assert ids(await client.get("/api/patterns", params={"search": "nocturno"})) == [pattern["id"]]

    await delete(client, owner, pattern["id"])

    assert ids(await client.get("/api/patterns", params={"search": "nocturno"})) == []


async def test_deleted_pattern_leaves_my_patterns(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    private = await create_pattern(client, owner, isPublic=False)

    await delete(client, owner, pattern["id"])
    await delete(client, owner, private["id"])

    mine = await client.get("/api/patterns/me", headers=owner.headers)
    assert ids(mine) == []
    assert mine.json()["data"]["pagination"]["total"] == 0


async def test_delete_by_another_user_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
    other: Account,
    owner: Account,
    pattern: dict[str, Any],
    db: AsyncSession,
) -> None:
    private = await create_pattern(client, owner, isPublic=False)

    public_attempt = await client.delete(f"/api/patterns/{pattern['id']}", headers=other.headers)
    private_attempt = await client.delete(f"/api/patterns/{private['id']}", headers=other.headers)

    assert_error(public_attempt, 403, "UNAUTHORIZED")
    assert_error(private_attempt, 404, "PATTERN_NOT_FOUND")
    assert await deleted_at(db, pattern["id"]) is None
    assert await deleted_at(db, private["id"]) is None


async def test_deleting_twice_is_not_found(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    await delete(client, owner, pattern["id"])

    response = await client.delete(f"/api/patterns/{pattern['id']}", headers=owner.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_share_link_of_a_deleted_pattern_no_longer_opens(
    client: httpx.AsyncClient, owner: Account
) -> None:
    private = await create_pattern(client, owner, isPublic=False)
    link = await client.post(f"/api/patterns/{private['id']}/share-links", headers=owner.headers)
    token = link.json()["data"]["token"]
    assert (await client.get(f"/api/shared/{token}")).status_code == 200

    await delete(client, owner, private["id"])

    assert_error(await client.get(f"/api/shared/{token}"), 404, "SHARE_LINK_NOT_FOUND")


# --- the list of deleted patterns ------------------------------------------------------------


async def test_deleted_list_shows_the_owners_deleted_patterns(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    live = await create_pattern(client, owner)
    await delete(client, owner, pattern["id"])

    response = await client.get("/api/patterns/deleted", headers=owner.headers)

    assert ids(response) == [pattern["id"]]
    item = response.json()["data"]["patterns"][0]
    assert item["title"] == "Mambo Nocturno"
    assert item["author"]["id"] == owner.id
    assert response.json()["data"]["pagination"]["total"] == 1
    assert live["id"] not in ids(response)


async def test_deleted_list_is_the_owners_only(
    client: httpx.AsyncClient, owner: Account, other: Account, pattern: dict[str, Any]
) -> None:
    await delete(client, owner, pattern["id"])

    assert ids(await client.get("/api/patterns/deleted", headers=other.headers)) == []
    assert_error(await client.get("/api/patterns/deleted"), 401, "AUTH_REQUIRED")


async def test_deleted_list_leaves_out_deletions_past_the_window(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    await delete(client, owner, pattern["id"])
    await age_deletion(db, pattern["id"], days=8)

    assert ids(await client.get("/api/patterns/deleted", headers=owner.headers)) == []


# --- restore -------------------------------------------------------------------------------


async def test_restore_brings_the_pattern_back(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    await delete(client, owner, pattern["id"])

    response = await client.post(f"/api/patterns/{pattern['id']}/restore", headers=owner.headers)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["id"] == pattern["id"]
    assert data["title"] == "Mambo Nocturno"
    assert await deleted_at(db, pattern["id"]) is None
    anonymous = await client.get(f"/api/patterns/{pattern['id']}")
    assert anonymous.status_code == 200
    assert anonymous.json()["data"]["title"] == "Mambo Nocturno"


async def test_restored_pattern_is_listed_again(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    await delete(client, owner, pattern["id"])
    assert ids(await client.get("/api/patterns")) == []  # caches the empty count

    await client.post(f"/api/patterns/{pattern['id']}/restore", headers=owner.headers)

    listing = await client.get("/api/patterns")
    assert ids(listing) == [pattern["id"]]
    assert listing.json()["data"]["pagination"]["total"] == 1
    assert ids(await client.get("/api/patterns", params={"search": "nocturno"})) == [pattern["id"]]
    assert ids(await client.get("/api/patterns/me", headers=owner.headers)) == [pattern["id"]]
    assert ids(await client.get("/api/patterns/deleted", headers=owner.headers)) == []


async def test_restore_by_another_user_is_not_found(
    client: httpx.AsyncClient,
    owner: Account,
    other: Account,
    pattern: dict[str, Any],
    db: AsyncSession,
) -> None:
    await delete(client, owner, pattern["id"])

    response = await client.post(f"/api/patterns/{pattern['id']}/restore", headers=other.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert await deleted_at(db, pattern["id"]) is not None


async def test_restore_anonymously_requires_auth(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    await delete(client, owner, pattern["id"])

    response = await client.post(f"/api/patterns/{pattern['id']}/restore")

    assert_error(response, 401, "AUTH_REQUIRED")
    assert await deleted_at(db, pattern["id"]) is not None


async def test_restore_of_a_live_pattern_is_not_found(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    response = await client.post(f"/api/patterns/{pattern['id']}/restore", headers=owner.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_restore_after_the_window_is_not_found_and_stays_deleted(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    await delete(client, owner, pattern["id"])
    await age_deletion(db, pattern["id"], days=8)
    aged = await deleted_at(db, pattern["id"])

    response = await client.post(f"/api/patterns/{pattern['id']}/restore", headers=owner.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert await deleted_at(db, pattern["id"]) == aged
    assert_error(
        await client.get(f"/api/patterns/{pattern['id']}", headers=owner.headers),
        404,
        "PATTERN_NOT_FOUND",
    )


async def test_restore_within_the_window_works_days_later(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    await delete(client, owner, pattern["id"])
    await age_deletion(db, pattern["id"], days=6)

    response = await client.post(f"/api/patterns/{pattern['id']}/restore", headers=owner.headers)

    assert response.status_code == 200, response.text
    assert await deleted_at(db, pattern["id"]) is None


# --- purge ---------------------------------------------------------------------------------


async def test_purge_removes_patterns_deleted_past_the_window_with_their_data(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    other: Account,
    db: AsyncSession,
) -> None:
    old = await create_pattern(client, owner)
    await client.put(f"/api/patterns/{old['id']}", json={"bpm": 200}, headers=owner.headers)
    await client.post(f"/api/patterns/{old['id']}/like", headers=other.headers)
    await client.post(f"/api/patterns/{old['id']}/share-links", headers=owner.headers)
    assert await count(db, PatternVersion, old["id"]) == 1
    assert await count(db, PatternLike, old["id"]) == 1
    assert await count(db, ShareLink, old["id"]) == 1
    await delete(client, owner, old["id"])
    await age_deletion(db, old["id"], days=8)

    purged = await service.purge_deleted(state)

    assert purged == 1
    assert await count(db, Pattern, old["id"]) == 0
    assert await count(db, PatternVersion, old["id"]) == 0
    assert await count(db, PatternLike, old["id"]) == 0
    assert await count(db, ShareLink, old["id"]) == 0


async def test_purge_keeps_recent_deletions_and_live_patterns(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    other: Account,
    db: AsyncSession,
) -> None:
    recent = await create_pattern(client, owner)
    live = await create_pattern(client, owner)
    await client.post(f"/api/patterns/{live['id']}/like", headers=other.headers)
    await client.put(f"/api/patterns/{recent['id']}", json={"bpm": 200}, headers=owner.headers)
    await delete(client, owner, recent["id"])
    await age_deletion(db, recent["id"], days=6)

    purged = await service.purge_deleted(state)

    assert purged == 0
    assert await count(db, Pattern, recent["id"]) == 1
    assert await count(db, PatternVersion, recent["id"]) == 1
    assert await count(db, Pattern, live["id"]) == 1
    assert await count(db, PatternLike, live["id"]) == 1
    restored = await client.post(f"/api/patterns/{recent['id']}/restore", headers=owner.headers)
    assert restored.status_code == 200, restored.text


async def test_purge_keeps_forks_of_a_purged_pattern(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    other: Account,
    db: AsyncSession,
) -> None:
    original = await create_pattern(client, owner)
    fork = await client.post(f"/api/patterns/{original['id']}/fork", headers=other.headers)
    fork_id = fork.json()["data"]["id"]
    await delete(client, owner, original["id"])
    await age_deletion(db, original["id"], days=8)

    assert await service.purge_deleted(state) == 1

    response = await client.get(f"/api/patterns/{fork_id}", headers=other.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["originalId"] is None


# --- concurrent update and delete ------------------------------------------------------------


async def test_concurrent_update_and_delete_leave_a_coherent_row(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    patterns = [await create_pattern(client, owner) for _ in range(4)]

    async def update_and_delete(pattern_id: str) -> tuple[httpx.Response, httpx.Response]:
        put, delete_response = await asyncio.gather(
            client.put(
                f"/api/patterns/{pattern_id}",
                json={"title": "Changed", "bpm": 120},
                headers=owner.headers,
            ),
            client.delete(f"/api/patterns/{pattern_id}", headers=owner.headers),
        )
        return put, delete_response

    outcomes = await asyncio.gather(*(update_and_delete(p["id"]) for p in patterns))

    for pattern, (put, delete_response) in zip(patterns, outcomes, strict=True):
        assert delete_response.status_code == 200, delete_response.text
        assert put.status_code in (200, 404), put.text
        row = await db.get(Pattern, pattern["id"], populate_existing=True)
        assert row is not None and row.deleted_at is not None
        versions = await count(db, PatternVersion, pattern["id"])
        if put.status_code == 200:  # updated, then deleted
            assert (row.title, row.bpm) == ("Changed", 120)
            assert versions == 1
        else:  # deleted first; the update found nothing
            assert_error(put, 404, "PATTERN_NOT_FOUND")
            assert (row.title, row.bpm) == (pattern["title"], 180)
            assert versions == 0
        assert row.version == versions + 1
