"""Profile counts from real patterns, and the pattern-creation rate limit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.patterns.models import Pattern
from tests.factories import Account, assert_error, register
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern, pattern_body


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return PATTERN_OVERRIDES


@pytest.fixture
async def visitor(client: httpx.AsyncClient) -> Account:
    return await register(client, display_name="Visitor")


async def my_stats(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.get("/api/users/me", headers=account.headers)
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()["data"]["stats"]
    return stats


async def public_stats(
    client: httpx.AsyncClient, user_id: str, viewer: Account | None = None
) -> dict[str, Any]:
    response = await client.get(f"/api/users/{user_id}", headers=viewer.headers if viewer else {})
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()["data"]["stats"]
    return stats


async def stored_patterns(db: AsyncSession, user_id: str) -> int:
    value = (await db.execute(select(func.count()).where(Pattern.user_id == user_id))).scalar_one()
    await db.commit()
    return int(value)


# --- profile counts ------------------------------------------------------------------------


async def test_new_account_has_no_patterns(client: httpx.AsyncClient, owner: Account) -> None:
    stats = await my_stats(client, owner)

    assert stats["patternsCreated"] == 0
    assert stats["patternsShared"] == 0


async def test_created_counts_every_pattern_and_shared_only_public_ones(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await create_pattern(client, owner, isPublic=True)
    await create_pattern(client, owner, isPublic=False)
    await create_pattern(client, owner, isPublic=False)

    stats = await my_stats(client, owner)

    assert stats["patternsCreated"] == 3
    assert stats["patternsShared"] == 1


async def test_making_a_pattern_public_counts_it_as_shared(
    client: httpx.AsyncClient, owner: Account
) -> None:
    private = await create_pattern(client, owner, isPublic=False)

    await client.put(
        f"/api/patterns/{private['id']}", json={"isPublic": True}, headers=owner.headers
    )

    stats = await my_stats(client, owner)
    assert stats["patternsCreated"] == 1
    assert stats["patternsShared"] == 1


async def test_making_a_pattern_private_uncounts_it_as_shared(
    client: httpx.AsyncClient, owner: Account
) -> None:
    public = await create_pattern(client, owner, isPublic=True)

    await client.put(
        f"/api/patterns/{public['id']}", json={"isPublic": False}, headers=owner.headers
    )

    stats = await my_stats(client, owner)
    assert stats["patternsCreated"] == 1
    assert stats["patternsShared"] == 0


async def test_deleting_a_pattern_decrements_the_counts(
    client: httpx.AsyncClient, owner: Account
) -> None:
    public = await create_pattern(client, owner, isPublic=True)
    private = await create_pattern(client, owner, isPublic=False)

    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)
    after_public = await my_stats(client, owner)
    await client.delete(f"/api/patterns/{private['id']}", headers=owner.headers)
    after_both = await my_stats(client, owner)

    assert (after_public["patternsCreated"], after_public["patternsShared"]) == (1, 0)
    assert (after_both["patternsCreated"], after_both["patternsShared"]) == (0, 0)


async def test_restoring_a_pattern_counts_it_again(
    client: httpx.AsyncClient, owner: Account
) -> None:
    public = await create_pattern(client, owner, isPublic=True)
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    await client.post(f"/api/patterns/{public['id']}/restore", headers=owner.headers)

    stats = await my_stats(client, owner)
    assert (stats["patternsCreated"], stats["patternsShared"]) == (1, 1)


async def test_forking_counts_for_the_forker_not_the_author(
    client: httpx.AsyncClient, owner: Account, visitor: Account
) -> None:
    original = await create_pattern(client, owner, isPublic=True)

    await client.post(f"/api/patterns/{original['id']}/fork", headers=visitor.headers)

    forker = await my_stats(client, visitor)
    author = await my_stats(client, owner)
    assert (forker["patternsCreated"], forker["patternsShared"]) == (1, 0)  # forks are private
    assert (author["patternsCreated"], author["patternsShared"]) == (1, 1)


async def test_counts_are_per_user(
    client: httpx.AsyncClient, owner: Account, visitor: Account
) -> None:
    await create_pattern(client, owner, isPublic=True)

    stats = await my_stats(client, visitor)

    assert (stats["patternsCreated"], stats["patternsShared"]) == (0, 0)


async def test_public_profile_counts_shared_patterns_only(
    client: httpx.AsyncClient, owner: Account, visitor: Account
) -> None:
    await create_pattern(client, owner, isPublic=True)
    await create_pattern(client, owner, isPublic=True)
    await create_pattern(client, owner, isPublic=False)

    anonymous = await public_stats(client, owner.id)
    signed_in = await public_stats(client, owner.id, visitor)

    assert anonymous["patternsShared"] == 2
    assert "patternsCreated" not in anonymous
    assert signed_in["patternsShared"] == 2


async def test_public_profile_uncounts_a_deleted_pattern(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await create_pattern(client, owner, isPublic=True)
    gone = await create_pattern(client, owner, isPublic=True)
    assert (await public_stats(client, owner.id))["patternsShared"] == 2

    await client.delete(f"/api/patterns/{gone['id']}", headers=owner.headers)

    assert (await public_stats(client, owner.id))["patternsShared"] == 1


# --- the pattern-creation limit ------------------------------------------------------------


class TestCreationLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {**PATTERN_OVERRIDES, "RATE_LIMIT_PATTERN_CREATE": 2}

    async def test_third_pattern_in_the_hour_is_refused_and_not_stored(
        self, client: httpx.AsyncClient, owner: Account, db: AsyncSession
    ) -> None:
        await create_pattern(client, owner)
        await create_pattern(client, owner)

        response = await client.post(
            "/api/patterns", json=pattern_body(title="One too many"), headers=owner.headers
        )

        assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
        retry_after = int(response.headers["retry-after"])
        assert 0 < retry_after <= 3600
        assert await stored_patterns(db, owner.id) == 2
        titles = (
            await db.execute(select(Pattern.title).where(Pattern.user_id == owner.id))
        ).scalars()
        assert "One too many" not in set(titles)

    async def test_a_fork_counts_against_the_limit(
        self, client: httpx.AsyncClient, owner: Account, visitor: Account, db: AsyncSession
    ) -> None:
        original = await create_pattern(client, visitor)
        await create_pattern(client, owner)
        await create_pattern(client, owner)

        response = await client.post(f"/api/patterns/{original['id']}/fork", headers=owner.headers)

        assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
        assert "retry-after" in response.headers
        assert await stored_patterns(db, owner.id) == 2

    async def test_the_limit_is_per_user(
        self, client: httpx.AsyncClient, owner: Account, visitor: Account, db: AsyncSession
    ) -> None:
        await create_pattern(client, owner)
        await create_pattern(client, owner)

        response = await client.post("/api/patterns", json=pattern_body(), headers=visitor.headers)

        assert response.status_code == 201, response.text
        assert await stored_patterns(db, visitor.id) == 1
