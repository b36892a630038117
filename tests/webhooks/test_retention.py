"""Deliveries and their attempt logs are kept for `WEBHOOK_DELIVERY_RETENTION` after they
finished, then removed by an hourly job; one still being attempted stays."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.webhooks import service
from beatmachine.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.factories import Account, assert_error
from tests.http_receiver import Receiver
from tests.jobs import settle
from tests.webhooks.helpers import BASE, create_endpoint, deliveries


async def _pings(
    client: httpx.AsyncClient, state: AppState, admin: Account, endpoint_id: str, count: int
) -> list[str]:
    """`count` test pings to the endpoint, all delivered."""
    ids = []
    for _ in range(count):
        response = await client.post(f"{BASE}/{endpoint_id}/test", headers=admin.headers)
        assert response.status_code == 202, response.text
        ids.append(response.json()["data"]["id"])
    await settle(state)
    return ids


async def _age(
    db: AsyncSession, delivery_id: str, *, made: timedelta, attempted: timedelta | None
) -> None:
    now = utcnow()
    await db.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            created_at=now - made,
            last_attempt_at=None if attempted is None else now - attempted,
        )
    )
    await db.commit()


async def _attempts_of(db: AsyncSession, delivery_id: str) -> int:
    statement = select(func.count()).where(WebhookAttempt.delivery_id == delivery_id)
    return int((await db.execute(statement)).scalar_one())


async def test_a_delivery_finished_past_the_retention_goes_with_its_attempts(
    client: httpx.AsyncClient,
    state: AppState,
    db: AsyncSession,
    admin: Account,
    receiver: Receiver,
) -> None:
    endpoint = await create_endpoint(client, admin, receiver.url)
    old, recent = await _pings(client, state, admin, endpoint["id"], 2)
    await _age(db, old, made=timedelta(days=31), attempted=timedelta(days=31))

    removed = await service.prune_deliveries(state)

    assert removed == 1
    response = await client.get(f"{BASE}/deliveries/{old}", headers=admin.headers)
    assert_error(response, 404, "WEBHOOK_DELIVERY_NOT_FOUND")
    assert await _attempts_of(db, old) == 0
    assert [d["id"] for d in await deliveries(client, admin, endpoint["id"])] == [recent]
    assert await _attempts_of(db, recent) == 1


async def test_an_old_delivery_attempted_again_lately_is_kept(
    client: httpx.AsyncClient,
    state: AppState,
    db: AsyncSession,
    admin: Account,
    receiver: Receiver,
) -> None:
    endpoint = await create_endpoint(client, admin, receiver.url)
    [redelivered] = await _pings(client, state, admin, endpoint["id"], 1)
    await _age(db, redelivered, made=timedelta(days=40), attempted=timedelta(days=2))

    removed = await service.prune_deliveries(state)

    assert removed == 0
    assert [d["id"] for d in await deliveries(client, admin, endpoint["id"])] == [redelivered]


async def test_a_pending_delivery_is_kept_however_old(
    client: httpx.AsyncClient,
    state: AppState,
    db: AsyncSession,
    admin: Account,
    receiver: Receiver,
) -> None:
    endpoint = await create_endpoint(client, admin, receiver.url)
    [waiting] = await _pings(client, state, admin, endpoint["id"], 1)
    await _age(db, waiting, made=timedelta(days=60), attempted=timedelta(days=60))
    # As if its next retry were still to come.
    await db.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == waiting).values(status="pending")
    )
    await db.commit()

    removed = await service.prune_deliveries(state)

    assert removed == 0
    assert await _attempts_of(db, waiting) == 1


async def test_removing_old_deliveries_is_a_periodic_job(state: AppState) -> None:
    assert "prune-webhook-deliveries" in [job.name for job in state.scheduler.jobs]
