"""A pattern's `stats.comments` stays exact (posting, deleting, at once, accounts purged),
the comment rate limit applies, comments follow their pattern through delete, restore
and purge, and posting a comment records `comment.created`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.service import purge_deleted_accounts
from beatmachine.core.events import Delivered
from beatmachine.core.state import AppState
from beatmachine.patterns import service as patterns_service
from beatmachine.patterns.models import Pattern
from beatmachine.social.events import CommentCreated
from beatmachine.social.models import Comment
from beatmachine.users.models import User
from tests.factories import ADMIN_OVERRIDES, Account, assert_error, register
from tests.jobs import settle
from tests.patterns.helpers import PATTERN_OVERRIDES
from tests.social.helpers import comment, comment_count, listed, post, reply

CONCURRENT_COMMENTERS = 200
COMMENT_LIMIT = 3


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        **PATTERN_OVERRIDES,
        **ADMIN_OVERRIDES,
        "RATE_LIMIT_ANONYMOUS": 10_000,
        "RATE_LIMIT_COMMENT_CREATE": COMMENT_LIMIT,
    }


async def stored_count(db: AsyncSession, pattern_id: str) -> int:
    value = (
        await db.execute(select(Pattern.comments_count).where(Pattern.id == pattern_id))
    ).scalar_one()
    await db.commit()
    return int(value)


async def comment_rows(db: AsyncSession, pattern_id: str) -> int:
    value = (
        await db.execute(
            select(func.count()).select_from(Comment).where(Comment.pattern_id == pattern_id)
        )
    ).scalar_one()
    await db.commit()
    return int(value)


async def test_each_comment_and_reply_counts_on_the_pattern(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    first = await comment(client, fan, public["id"])
    await reply(client, owner, public["id"], first["id"], "thanks")

    # The anonymous read is the cached public copy: it follows the count too.
    assert await comment_count(client, public["id"]) == 2
    assert await comment_count(client, public["id"], owner) == 2


async def test_listing_shows_the_comment_count(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    await comment(client, fan, public["id"])

    response = await client.get("/api/patterns")

    [item] = response.json()["data"]["patterns"]
    assert item["stats"]["comments"] == 1


async def test_deleting_a_thread_takes_all_its_comments_off_the_count(
    client: httpx.AsyncClient,
    fan: Account,
    owner: Account,
    public: dict[str, Any],
    db: AsyncSession,
) -> None:
    first = await comment(client, fan, public["id"])
    await reply(client, owner, public["id"], first["id"], "one")
    await reply(client, owner, public["id"], first["id"], "two")
    await comment(client, owner, public["id"], "separate")

    await client.delete(f"/api/comments/{first['id']}", headers=fan.headers)

    assert await comment_count(client, public["id"]) == 1
    assert await stored_count(db, public["id"]) == await comment_rows(db, public["id"]) == 1


async def test_comments_posted_at_once_by_many_users_are_counted_exactly(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    commenters = await asyncio.gather(
        *(register(client, display_name=f"Fan {n}") for n in range(CONCURRENT_COMMENTERS))
    )

    responses = await asyncio.gather(
        *(post(client, fan, public["id"], f"take {n}") for n, fan in enumerate(commenters))
    )

    assert [r.status_code for r in responses] == [201] * CONCURRENT_COMMENTERS
    assert await comment_rows(db, public["id"]) == CONCURRENT_COMMENTERS
    assert await stored_count(db, public["id"]) == CONCURRENT_COMMENTERS
    assert await comment_count(client, public["id"]) == CONCURRENT_COMMENTERS


async def test_comments_past_the_hourly_limit_are_refused_and_not_stored(
    client: httpx.AsyncClient, fan: Account, public: dict[str, Any]
) -> None:
    for n in range(COMMENT_LIMIT):
        await comment(client, fan, public["id"], f"take {n}")

    response = await post(client, fan, public["id"], "one more")

    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert int(response.headers["Retry-After"]) > 0
    assert len((await listed(client, public["id"]))["comments"]) == COMMENT_LIMIT
    assert await comment_count(client, public["id"]) == COMMENT_LIMIT


async def test_the_comment_limit_is_per_user(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    for n in range(COMMENT_LIMIT):
        await comment(client, fan, public["id"], f"take {n}")

    response = await post(client, owner, public["id"], "my turn")

    assert response.status_code == 201, response.text


async def test_a_refused_comment_does_not_use_up_the_limit(
    client: httpx.AsyncClient,
    fan: Account,
    stranger: Account,
    private: dict[str, Any],
    public: dict[str, Any],
) -> None:
    for _ in range(COMMENT_LIMIT + 1):
        assert_error(await post(client, stranger, private["id"], "x"), 404, "PATTERN_NOT_FOUND")

    response = await post(client, stranger, public["id"], "allowed")

    assert response.status_code == 201, response.text


# --- with the pattern --------------------------------------------------------------------


async def test_deleting_a_pattern_hides_its_comments_and_restoring_brings_them_back(
    client: httpx.AsyncClient, fan: Account, owner: Account, public: dict[str, Any]
) -> None:
    posted = await comment(client, fan, public["id"])
    deleted = await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)
    assert deleted.status_code == 200, deleted.text

    hidden = await client.get(f"/api/patterns/{public['id']}/comments")
    edit = await client.put(
        f"/api/comments/{posted['id']}", json={"text": "x"}, headers=fan.headers
    )
    assert_error(hidden, 404, "PATTERN_NOT_FOUND")
    assert_error(edit, 404, "PATTERN_NOT_FOUND")

    restored = await client.post(f"/api/patterns/{public['id']}/restore", headers=owner.headers)
    assert restored.status_code == 200, restored.text
    assert [c["id"] for c in (await listed(client, public["id"]))["comments"]] == [posted["id"]]
    assert await comment_count(client, public["id"]) == 1


async def test_purging_a_pattern_removes_its_comments(
    client: httpx.AsyncClient,
    state: AppState,
    fan: Account,
    owner: Account,
    public: dict[str, Any],
    db: AsyncSession,
) -> None:
    first = await comment(client, fan, public["id"])
    await reply(client, owner, public["id"], first["id"], "answer")
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)
    await db.execute(
        update(Pattern)
        .where(Pattern.id == public["id"])
        .values(deleted_at=datetime.now(UTC) - timedelta(days=8))
    )
    await db.commit()

    assert await patterns_service.purge_deleted(state) == 1

    assert await comment_rows(db, public["id"]) == 0


async def test_purging_an_account_takes_its_comments_off_the_counts(
    client: httpx.AsyncClient,
    state: AppState,
    fan: Account,
    owner: Account,
    stranger: Account,
    public: dict[str, Any],
    db: AsyncSession,
) -> None:
    opened = await comment(client, fan, public["id"], "fan's thread")
    await reply(client, owner, public["id"], opened["id"], "owner's reply")
    await comment(client, owner, public["id"], "owner's own")
    owners_thread = await comment(client, stranger, public["id"], "stranger's thread")
    await reply(client, fan, public["id"], owners_thread["id"], "fan's reply")
    assert await comment_count(client, public["id"]) == 5
    await db.execute(
        update(User)
        .where(User.id == fan.id)
        .values(deletion_scheduled_at=datetime.now(UTC) - timedelta(days=1))
    )
    await db.commit()

    assert await purge_deleted_accounts(state) == 1

    # Gone: the fan's thread with the owner's reply in it, and the fan's reply.
    left = [c["text"] for c in (await listed(client, public["id"]))["comments"]]
    assert left == ["owner's own", "stranger's thread"]
    assert await stored_count(db, public["id"]) == 2
    assert await comment_count(client, public["id"]) == 2


# --- events ------------------------------------------------------------------------------


async def test_posting_a_reply_records_comment_created(
    client: httpx.AsyncClient,
    state: AppState,
    fan: Account,
    owner: Account,
    public: dict[str, Any],
) -> None:
    heard: list[CommentCreated] = []

    async def keep(_session: AsyncSession, delivered: Delivered[CommentCreated]) -> None:
        heard.append(delivered.event)

    state.events.listen(CommentCreated, "test.comments", keep)
    first = await comment(client, fan, public["id"])

    answer = await reply(client, owner, public["id"], first["id"], "answer")

    await settle(state)
    # Delivery keeps no order: the first comment, then the reply.
    assert sorted(heard, key=lambda event: event.parent_id is not None) == [
        CommentCreated(
            comment_id=first["id"],
            pattern_id=public["id"],
            owner_id=owner.id,
            user_id=fan.id,
            parent_id=None,
            parent_author_id=None,
            replied_to_id=None,
            replied_to_author_id=None,
            is_public=True,
        ),
        CommentCreated(
            comment_id=answer["id"],
            pattern_id=public["id"],
            owner_id=owner.id,
            user_id=owner.id,
            parent_id=first["id"],
            parent_author_id=fan.id,
            replied_to_id=first["id"],
            replied_to_author_id=fan.id,
            is_public=True,
        ),
    ]
