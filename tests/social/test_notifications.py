"""Notifications: likes and comments on one's patterns, replies to one's comments and new
followers, listed with an unread count, marked read one by one or all at once, and
e-mailed in batches for the kinds one switched on."""

from __future__ import annotations

import asyncio
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.state import AppState
from beatmachine.social import service
from beatmachine.social.models import NotificationDigest
from tests.factories import ADMIN_OVERRIDES, Account, assert_error, confirm_email, register
from tests.jobs import settle
from tests.patterns.helpers import PATTERN_OVERRIDES
from tests.social.helpers import comment, follow, reply
from tests.waiting import eventually

BURST = 50


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        **PATTERN_OVERRIDES,
        **ADMIN_OVERRIDES,
        "RATE_LIMIT_ANONYMOUS": 10_000,
    }


async def inbox(client: httpx.AsyncClient, account: Account, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/notifications{query}", headers=account.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def kinds(client: httpx.AsyncClient, account: Account) -> list[str]:
    return [n["type"] for n in (await inbox(client, account, "?limit=100"))["notifications"]]


def mails_to(outbox: Path, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if isinstance(message, EmailMessage) and message["To"] == address:
            found.append(message)
    return found


def digests(outbox: Path, address: str) -> list[EmailMessage]:
    return [m for m in mails_to(outbox, address) if "notification" in str(m["Subject"])]


async def like(client: httpx.AsyncClient, account: Account, pattern_id: str) -> None:
    response = await client.post(f"/api/patterns/{pattern_id}/like", headers=account.headers)
    assert response.status_code == 200, response.text


async def test_notifications_need_a_token(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/notifications"), 401, "AUTH_REQUIRED")


async def test_a_like_of_ones_pattern_is_a_notification(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    await like(client, fan, public["id"])
    await settle(state)

    data = await inbox(client, owner)

    (notification,) = data["notifications"]
    assert notification["id"].startswith("ntf_")
    assert notification["createdAt"].endswith("Z")
    assert {k: v for k, v in notification.items() if k not in ("id", "createdAt")} == {
        "type": "pattern_liked",
        "actor": {"id": fan.id, "displayName": fan.display_name, "avatar": None},
        "pattern": {"id": public["id"], "title": public["title"]},
        "commentId": None,
        "read": False,
        "readAt": None,
    }
    assert data["unreadCount"] == 1
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 1, "pages": 1}


async def test_nobody_is_notified_of_their_own_like_comment_or_reply(
    client: httpx.AsyncClient, state: AppState, owner: Account, public: dict[str, Any]
) -> None:
    await like(client, owner, public["id"])
    first = await comment(client, owner, public["id"])
    await reply(client, owner, public["id"], first["id"], "and me again")
    await settle(state)

    assert await kinds(client, owner) == []


async def test_a_comment_on_ones_pattern_is_a_notification(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    posted = await comment(client, fan, public["id"])
    await settle(state)

    (notification,) = (await inbox(client, owner))["notifications"]

    assert notification["type"] == "pattern_commented"
    assert notification["commentId"] == posted["id"]
    assert notification["actor"]["id"] == fan.id


async def test_a_reply_tells_the_one_answered_and_the_patterns_owner(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    fan: Account,
    stranger: Account,
    public: dict[str, Any],
) -> None:
    first = await comment(client, fan, public["id"])
    await settle(state)
    answer = await reply(client, stranger, public["id"], first["id"], "Agreed")
    await settle(state)

    to_fan = (await inbox(client, fan))["notifications"]

    assert [(n["type"], n["commentId"]) for n in to_fan] == [("comment_replied", answer["id"])]
    assert await kinds(client, owner) == ["pattern_commented", "pattern_commented"]


async def test_the_owner_answering_a_comment_tells_its_author_only(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    first = await comment(client, fan, public["id"])
    await reply(client, owner, public["id"], first["id"], "Thanks!")
    await settle(state)

    assert await kinds(client, fan) == ["comment_replied"]
    assert await kinds(client, owner) == ["pattern_commented"]


async def test_a_new_follower_is_a_notification(
    client: httpx.AsyncClient, state: AppState, owner: Account, fan: Account
) -> None:
    await follow(client, fan, owner.id)
    await settle(state)

    (notification,) = (await inbox(client, owner))["notifications"]

    assert notification["type"] == "user_followed"
    assert notification["pattern"] is None
    assert notification["actor"]["id"] == fan.id


async def test_a_like_taken_back_and_given_again_tells_once_while_unread(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    for _ in range(3):
        await like(client, fan, public["id"])
        await client.delete(f"/api/patterns/{public['id']}/like", headers=fan.headers)
        await settle(state)

    assert await kinds(client, owner) == ["pattern_liked"]


async def test_notifications_are_newest_first_and_paginated(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    for text in ("one", "two", "three"):
        await comment(client, fan, public["id"], text)
        await settle(state)
    posted = (await client.get(f"/api/patterns/{public['id']}/comments")).json()["data"]

    second = await inbox(client, owner, "?limit=2&page=2")

    oldest = posted["comments"][0]["id"]
    assert [n["commentId"] for n in second["notifications"]] == [oldest]
    assert second["pagination"] == {"page": 2, "limit": 2, "total": 3, "pages": 2}


async def test_marking_one_read_changes_it_and_the_unread_count(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    await like(client, fan, public["id"])
    await follow(client, fan, owner.id)
    await settle(state)
    first = (await inbox(client, owner))["notifications"][0]

    marked = await client.post(f"/api/notifications/{first['id']}/read", headers=owner.headers)
    again = await client.post(f"/api/notifications/{first['id']}/read", headers=owner.headers)
    count = await client.get("/api/notifications/unread-count", headers=owner.headers)

    assert marked.status_code == 200
    assert marked.json()["data"]["read"] is True
    assert marked.json()["data"]["readAt"].endswith("Z")
    assert again.json()["data"]["readAt"] == marked.json()["data"]["readAt"]
    assert count.json() == {"success": True, "data": {"unreadCount": 1}}
    unread = await inbox(client, owner, "?unread=true")
    assert [n["id"] for n in unread["notifications"]] != [first["id"]]
    assert unread["pagination"]["total"] == 1


async def test_marking_all_read_leaves_none_unread(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    await like(client, fan, public["id"])
    await follow(client, fan, owner.id)
    await settle(state)

    response = await client.post("/api/notifications/read-all", headers=owner.headers)

    assert response.json() == {"success": True, "data": {"updated": 2, "unreadCount": 0}}
    after = await inbox(client, owner)
    assert after["unreadCount"] == 0
    assert {n["read"] for n in after["notifications"]} == {True}


async def test_someone_elses_notification_cannot_be_marked(
    client: httpx.AsyncClient, state: AppState, owner: Account, fan: Account
) -> None:
    await follow(client, fan, owner.id)
    await settle(state)
    theirs = (await inbox(client, owner))["notifications"][0]["id"]

    response = await client.post(f"/api/notifications/{theirs}/read", headers=fan.headers)

    assert_error(response, 404, "NOTIFICATION_NOT_FOUND")
    assert (await inbox(client, owner))["unreadCount"] == 1


async def test_an_unknown_notification_is_not_found(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.post("/api/notifications/ntf_nothing/read", headers=owner.headers)

    assert_error(response, 404, "NOTIFICATION_NOT_FOUND")


async def test_a_pattern_no_longer_visible_is_not_named(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    fan: Account,
    stranger: Account,
    public: dict[str, Any],
) -> None:
    first = await comment(client, fan, public["id"])
    await reply(client, stranger, public["id"], first["id"], "Yes")
    await settle(state)

    await client.put(
        f"/api/patterns/{public['id']}", json={"isPublic": False}, headers=owner.headers
    )

    (to_fan,) = (await inbox(client, fan))["notifications"]
    assert to_fan["type"] == "comment_replied"
    assert to_fan["pattern"] is None


@pytest.mark.parametrize("query", ["?unread=maybe", "?page=0", "?limit=101"])
async def test_bad_query_is_refused(client: httpx.AsyncClient, owner: Account, query: str) -> None:
    response = await client.get(f"/api/notifications{query}", headers=owner.headers)

    assert_error(response, 422, "VALIDATION_ERROR")


# --- e-mail -------------------------------------------------------------------------


async def test_a_notification_is_emailed_to_a_confirmed_address(
    client: httpx.AsyncClient,
    state: AppState,
    outbox: Path,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    await confirm_email(client, owner)

    await like(client, fan, public["id"])
    await settle(state)

    (mail,) = digests(outbox, owner.email)
    assert mail["Subject"] == "Beat Machine: 1 new notification"
    assert f"{fan.display_name} liked “{public['title']}”." in mail.get_content()
    assert "http://localhost:3009/notifications" in mail.get_content()


async def test_an_unconfirmed_address_gets_no_notification_email(
    client: httpx.AsyncClient,
    state: AppState,
    outbox: Path,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    await like(client, fan, public["id"])
    await settle(state)

    assert len((await inbox(client, owner))["notifications"]) == 1
    assert digests(outbox, owner.email) == []


async def test_a_kind_switched_off_is_not_emailed_and_the_others_are(
    client: httpx.AsyncClient,
    state: AppState,
    outbox: Path,
    owner: Account,
    fan: Account,
    public: dict[str, Any],
) -> None:
    await confirm_email(client, owner)
    switched = await client.put(
        "/api/users/me/preferences", json={"notifyLikes": False}, headers=owner.headers
    )
    assert switched.status_code == 200, switched.text

    await like(client, fan, public["id"])
    await settle(state)
    assert digests(outbox, owner.email) == []
    await follow(client, fan, owner.id)
    await settle(state)

    (mail,) = digests(outbox, owner.email)
    assert "started following you" in mail.get_content()
    assert "liked" not in mail.get_content()


# The burst's e-mail waits longer than the test: the test sends it when the burst is in.
BURST_OVERRIDES = {
    **PATTERN_OVERRIDES,
    "NOTIFICATION_EMAIL_DELAY": 3600,
    "RATE_LIMIT_ANONYMOUS": 10_000,
}


@pytest.mark.parametrize("settings_overrides", [BURST_OVERRIDES])
async def test_a_burst_of_likes_schedules_one_email_that_tells_them_all(
    client: httpx.AsyncClient,
    state: AppState,
    db: AsyncSession,
    outbox: Path,
    owner: Account,
    public: dict[str, Any],
) -> None:
    await confirm_email(client, owner)
    likers = [await register(client, display_name=f"Dancer {n}") for n in range(BURST)]

    await asyncio.gather(*(like(client, liker, public["id"]) for liker in likers))

    async def all_in() -> bool:
        return int((await inbox(client, owner))["unreadCount"]) == BURST

    await eventually(all_in, within=30)
    scheduled = (await db.execute(select(func.count()).select_from(NotificationDigest))).scalar()
    told = await service.send_email(state, owner.id)
    told_again = await service.send_email(state, owner.id)  # as the scheduled job will

    async def mailed() -> bool:
        return bool(digests(outbox, owner.email))

    await eventually(mailed, within=30)
    (mail,) = digests(outbox, owner.email)
    assert (scheduled, told, told_again) == (1, BURST, 0)
    assert mail["Subject"] == f"Beat Machine: {BURST} new notifications"
    assert f"and {BURST - 2} others liked “{public['title']}”." in mail.get_content()
