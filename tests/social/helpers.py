"""Posting and reading comments in tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Account


async def post(
    client: httpx.AsyncClient, account: Account, pattern_id: str, text: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/api/patterns/{pattern_id}/comments",
        json={"text": text, **extra},
        headers=account.headers,
    )


async def comment(
    client: httpx.AsyncClient, account: Account, pattern_id: str, text: str = "Nice tumbao"
) -> dict[str, Any]:
    """Post a comment as `account`; returns the 201 answer's `data`."""
    response = await post(client, account, pattern_id, text)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def reply(
    client: httpx.AsyncClient, account: Account, pattern_id: str, parent_id: str, text: str
) -> dict[str, Any]:
    response = await post(client, account, pattern_id, text, parentId=parent_id)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def listed(
    client: httpx.AsyncClient,
    pattern_id: str,
    account: Account | None = None,
    query: str = "",
) -> dict[str, Any]:
    """The `data` of the pattern's comment list (200 expected)."""
    headers = account.headers if account else {}
    response = await client.get(f"/api/patterns/{pattern_id}/comments{query}", headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def comment_count(
    client: httpx.AsyncClient, pattern_id: str, account: Account | None = None
) -> int:
    """`stats.comments` of the pattern as its read shows it."""
    headers = account.headers if account else {}
    response = await client.get(f"/api/patterns/{pattern_id}", headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["stats"]["comments"])


async def follow(client: httpx.AsyncClient, who: Account, whom: str) -> httpx.Response:
    return await client.post(f"/api/users/{whom}/follow", headers=who.headers)


async def unfollow(client: httpx.AsyncClient, who: Account, whom: str) -> httpx.Response:
    return await client.delete(f"/api/users/{whom}/follow", headers=who.headers)


async def feed(client: httpx.AsyncClient, account: Account, query: str = "") -> dict[str, Any]:
    """The `data` of the account's feed (200 expected)."""
    response = await client.get(f"/api/feed{query}", headers=account.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def feed_kinds(client: httpx.AsyncClient, account: Account) -> list[tuple[str, str]]:
    """(type, pattern id or followed user id) of each activity on the feed's first page."""
    activities = (await feed(client, account, "?limit=100"))["activities"]
    return [(a["type"], (a["pattern"] or a["followedUser"])["id"]) for a in activities]
