"""What endpoints receive: one signed delivery per event of public content, checked as a
subscriber checks it (the `standardwebhooks` package) on a real receiver on loopback;
nothing for private content or events not subscribed to."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from beatmachine.core.state import AppState
from tests.factories import Account
from tests.http_receiver import Receiver
from tests.jobs import settle
from tests.patterns.helpers import create_pattern
from tests.webhooks.helpers import BASE, create_endpoint, deliveries, verified


async def _subscribed(
    client: httpx.AsyncClient, admin: Account, receiver: Receiver, events: list[str] | None = None
) -> dict[str, Any]:
    return await create_endpoint(client, admin, receiver.url, events)


async def _the_one_delivery(
    state: AppState, receiver: Receiver, endpoint: dict[str, Any], event_type: str
) -> dict[str, Any]:
    """Once the app has settled: the `data` of the one delivery the receiver got, checked
    with the endpoint's secret and of `event_type`."""
    await settle(state)
    [request] = receiver.requests
    payload = verified(request, endpoint["secret"])
    assert payload["type"] == event_type
    data: dict[str, Any] = payload["data"]
    return data


@pytest.fixture
async def private(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=False)


@pytest.fixture
async def public(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> dict[str, Any]:
    """A public pattern, made after the private one."""
    return await create_pattern(client, owner, isPublic=True, title="Son")


async def test_a_public_pattern_is_delivered_signed_with_public_fields_only(
    client: httpx.AsyncClient,
    state: AppState,
    admin: Account,
    owner: Account,
    receiver: Receiver,
) -> None:
    endpoint = await _subscribed(client, admin, receiver, ["pattern.created"])
    pattern = await create_pattern(client, owner, isPublic=True, title="Tumbao", bpm=190)

    await settle(state)

    [request] = receiver.requests
    payload = verified(request, endpoint["secret"])
    assert payload["type"] == "pattern.created"
    assert payload["data"]["pattern"] == {
        "id": pattern["id"],
        "title": "Tumbao",
        "flavor": "Salsa",
        "bpm": 190,
        "keyNote": 5,
        "originalId": None,
    }
    assert payload["data"]["owner"] == {"id": owner.id, "displayName": "Owner"}
    assert owner.email.encode() not in request.body
    assert request.headers["User-Agent"] == "SalsaNor-BeatMachine-Webhooks/1.0"
    assert request.headers["Content-Type"] == "application/json"
    [delivery] = await deliveries(client, admin, endpoint["id"])
    assert request.headers["webhook-id"] == delivery["id"]
    assert delivery["id"].startswith("whd_")
    assert delivery["status"] == "succeeded"
    assert delivery["eventType"] == "pattern.created"


async def test_a_private_pattern_is_not_delivered(
    client: httpx.AsyncClient,
    state: AppState,
    admin: Account,
    owner: Account,
    receiver: Receiver,
) -> None:
    endpoint = await _subscribed(client, admin, receiver, ["pattern.created"])
    await create_pattern(client, owner, isPublic=False)
    public = await create_pattern(client, owner, isPublic=True)

    await settle(state)

    # The public pattern, created after the private one, is the only delivery.
    assert [
        verified(r, endpoint["secret"])["data"]["pattern"]["id"] for r in receiver.requests
    ] == [public["id"]]


async def test_a_like_of_a_public_pattern_is_delivered_and_of_a_private_one_not(
    client: httpx.AsyncClient,
    state: AppState,
    admin: Account,
    owner: Account,
    fan: Account,
    receiver: Receiver,
    private: dict[str, Any],
    public: dict[str, Any],
) -> None:
    endpoint = await _subscribed(client, admin, receiver, ["pattern.liked"])
    await client.post(f"/api/patterns/{private['id']}/like", headers=owner.headers)
    await client.post(f"/api/patterns/{public['id']}/like", headers=fan.headers)

    assert await _the_one_delivery(state, receiver, endpoint, "pattern.liked") == {
        "pattern": {"id": public["id"], "title": "Son"},
        "owner": {"id": owner.id, "displayName": "Owner"},
        "user": {"id": fan.id, "displayName": "Fan"},
    }


async def test_a_comment_on_a_public_pattern_is_delivered_and_on_a_private_one_not(
    client: httpx.AsyncClient,
    state: AppState,
    admin: Account,
    owner: Account,
    fan: Account,
    receiver: Receiver,
    private: dict[str, Any],
    public: dict[str, Any],
) -> None:
    endpoint = await _subscribed(client, admin, receiver, ["comment.created"])
    hidden = await client.post(
        f"/api/patterns/{private['id']}/comments", json={"text": "mine"}, headers=owner.headers
    )
    assert hidden.status_code == 201, hidden.text
    posted = await client.post(
        f"/api/patterns/{public['id']}/comments", json={"text": "Nice"}, headers=fan.headers
    )
    assert posted.status_code == 201, posted.text

    assert await _the_one_delivery(state, receiver, endpoint, "comment.created") == {
        "comment": {"id": posted.json()["data"]["id"], "parentId": None},
        "pattern": {"id": public["id"], "title": "Son"},
        "owner": {"id": owner.id, "displayName": "Owner"},
        "user": {"id": fan.id, "displayName": "Fan"},
    }


async def test_a_follow_is_delivered(
    client: httpx.AsyncClient,
    state: AppState,
    admin: Account,
    owner: Account,
    fan: Account,
    receiver: Receiver,
) -> None:
    endpoint = await _subscribed(client, admin, receiver, ["user.followed"])
    followed = await client.post(f"/api/users/{owner.id}/follow", headers=fan.headers)
    assert followed.status_code == 200, followed.text

    assert await _the_one_delivery(state, receiver, endpoint, "user.followed") == {
        "follower": {"id": fan.id, "displayName": "Fan"},
        "followee": {"id": owner.id, "displayName": "Owner"},
    }


async def test_an_endpoint_receives_only_the_events_it_subscribed_to(
    client: httpx.AsyncClient,
    state: AppState,
    admin: Account,
    owner: Account,
    fan: Account,
    receiver: Receiver,
) -> None:
    endpoint = await _subscribed(client, admin, receiver, ["user.followed"])
    await create_pattern(client, owner, isPublic=True)
    await client.post(f"/api/users/{owner.id}/follow", headers=fan.headers)

    await settle(state)

    assert [verified(r, endpoint["secret"])["type"] for r in receiver.requests] == ["user.followed"]


async def test_a_disabled_endpoint_receives_nothing(
    client: httpx.AsyncClient,
    state: AppState,
    admin: Account,
    owner: Account,
    receiver: Receiver,
) -> None:
    disabled = await _subscribed(client, admin, receiver, ["pattern.created"])
    await client.patch(f"{BASE}/{disabled['id']}", json={"enabled": False}, headers=admin.headers)
    active = await create_endpoint(client, admin, receiver.url + "/active", ["pattern.created"])
    await create_pattern(client, owner, isPublic=True)

    await settle(state)

    # The enabled endpoint got its delivery; the disabled one has none at all.
    assert [r.path for r in receiver.requests] == ["/hooks/active"]
    assert verified(receiver.requests[0], active["secret"])["type"] == "pattern.created"
    assert await deliveries(client, admin, disabled["id"]) == []


async def test_a_test_ping_is_delivered(
    client: httpx.AsyncClient, state: AppState, admin: Account, receiver: Receiver
) -> None:
    endpoint = await _subscribed(client, admin, receiver)

    response = await client.post(f"{BASE}/{endpoint['id']}/test", headers=admin.headers)
    await settle(state)

    assert response.status_code == 202, response.text
    assert response.json()["data"]["eventType"] == "webhook.ping"
    assert response.json()["data"]["status"] == "pending"
    [request] = receiver.requests
    payload = verified(request, endpoint["secret"])
    assert payload["type"] == "webhook.ping"
    assert payload["data"] == {"endpointId": endpoint["id"]}
    assert request.headers["webhook-id"] == response.json()["data"]["id"]
