"""Registering endpoints and reading deliveries through the API, and checking what a
receiver got the way a subscriber would: with the `standardwebhooks` package."""

from __future__ import annotations

from typing import Any

import httpx
from standardwebhooks import Webhook

from tests.factories import Account
from tests.http_receiver import Received

ALL_EVENTS = ["pattern.created", "pattern.liked", "user.followed", "comment.created"]
BASE = "/api/admin/webhooks"


async def create_endpoint(
    client: httpx.AsyncClient,
    admin: Account,
    url: str,
    events: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Register an endpoint as `admin`; returns the 201 answer's `data` (with `secret`)."""
    response = await client.post(
        BASE,
        json={"url": url, "events": events or ALL_EVENTS, **extra},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def get_ok(client: httpx.AsyncClient, admin: Account, path: str) -> dict[str, Any]:
    """The `data` of a 200 GET under /api/admin/webhooks."""
    response = await client.get(f"{BASE}{path}", headers=admin.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def deliveries(
    client: httpx.AsyncClient, admin: Account, endpoint_id: str, query: str = ""
) -> list[dict[str, Any]]:
    data = await get_ok(client, admin, f"/{endpoint_id}/deliveries{query}")
    items: list[dict[str, Any]] = data["deliveries"]
    return items


def verified(request: Received, secret: str) -> dict[str, Any]:
    """The payload of a received delivery, verified as a subscriber would verify it."""
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload
