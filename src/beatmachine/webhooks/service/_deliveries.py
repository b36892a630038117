"""Deliveries: made for each subscribed endpoint when something public happens (or as a
test ping), listed with their status, looked at with their attempts, sent again."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.db import in_batches
from beatmachine.core.ids import isoformat_z, new_id, utcnow
from beatmachine.core.jobs import JobQueue
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.core.state import AppState
from beatmachine.webhooks import repository
from beatmachine.webhooks.exceptions import (
    DeliveryPending,
    EndpointDisabled,
    WebhookDeliveryNotFound,
)
from beatmachine.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from beatmachine.webhooks.schemas import PING
from beatmachine.webhooks.service._endpoints import get_endpoint

DELIVER_JOB = "webhooks.deliver"
PRUNE_BATCH = 1000


def payload(event_type: str, timestamp: datetime, data: dict[str, Any]) -> str:
    """The body of a delivery, as Standard Webhooks shapes it: `type`, `timestamp`, `data`."""
    document = {"type": event_type, "timestamp": isoformat_z(timestamp), "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def schedule(
    session: AsyncSession, jobs: JobQueue, delivery: WebhookDelivery, delay: float = 0
) -> None:
    """Queue the delivery's next attempt (after `delay` seconds) with the transaction."""
    jobs.enqueue(
        session,
        DELIVER_JOB,
        job_labels={"delay": delay} if delay > 0 else None,
        delivery_id=delivery.id,
        number=delivery.attempts + 1,
    )


def _new_delivery(
    session: AsyncSession,
    jobs: JobQueue,
    endpoint: WebhookEndpoint,
    event_type: str,
    event_id: str | None,
    body: str,
) -> WebhookDelivery:
    now = utcnow()
    delivery = WebhookDelivery(
        id=new_id("whd"),
        endpoint_id=endpoint.id,
        event_type=event_type,
        event_id=event_id,
        payload=body,
        status="pending",
        attempts=0,
        round_start=1,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    schedule(session, jobs, delivery)
    return delivery


async def record_event(
    session: AsyncSession,
    jobs: JobQueue,
    *,
    event_type: str,
    event_id: str,
    occurred_at: datetime,
    data: Callable[[], Awaitable[dict[str, Any] | None]],
) -> list[WebhookDelivery]:
    """One delivery to every enabled endpoint subscribed to `event_type`, each queued with
    the session's transaction; returns them. `data()` makes the payload's `data`, only
    when some endpoint is subscribed; None from it means the content is not public (no
    delivery)."""
    endpoints = await repository.subscribed(session, event_type)
    if not endpoints:
        return []
    made = await data()
    if made is None:
        return []
    body = payload(event_type, occurred_at, made)
    deliveries = [
        _new_delivery(session, jobs, endpoint, event_type, event_id, body) for endpoint in endpoints
    ]
    await session.flush()
    return deliveries


async def send_ping(session: AsyncSession, jobs: JobQueue, endpoint_id: str) -> WebhookDelivery:
    """A `webhook.ping` delivery to one endpoint (also a disabled one: a way to check it
    before enabling it again)."""
    endpoint = await get_endpoint(session, endpoint_id)
    body = payload(PING, utcnow(), {"endpointId": endpoint.id})
    delivery = _new_delivery(session, jobs, endpoint, PING, None, body)
    await session.flush()
    return delivery


async def list_deliveries(
    session: AsyncSession, endpoint_id: str, params: PageParams, status: str | None
) -> tuple[list[WebhookDelivery], Pagination]:
    """A page of an endpoint's deliveries, the newest first, of one status if given."""
    endpoint = await get_endpoint(session, endpoint_id)
    return await repository.deliveries_page(session, endpoint.id, params, status)


@dataclass(frozen=True)
class DeliveryWithAttempts:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


async def get_delivery(
    session: AsyncSession, delivery_id: str, *, for_update: bool = False
) -> WebhookDelivery:
    """The delivery with this id, or `WebhookDeliveryNotFound`."""
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=for_update)
    if delivery is None:
        raise WebhookDeliveryNotFound()
    return delivery


async def delivery_with_attempts(session: AsyncSession, delivery_id: str) -> DeliveryWithAttempts:
    """A delivery and every attempt of it, the first first."""
    delivery = await get_delivery(session, delivery_id)
    return DeliveryWithAttempts(delivery, await repository.attempts_of(session, delivery.id))


async def redeliver(session: AsyncSession, jobs: JobQueue, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again, with the same id and body and a fresh round of retries.
    One still being attempted is `DeliveryPending`; one to a disabled endpoint (a ping
    aside) is `EndpointDisabled`."""
    delivery = await get_delivery(session, delivery_id, for_update=True)
    if delivery.status == "pending":
        raise DeliveryPending()
    endpoint = await get_endpoint(session, delivery.endpoint_id)
    if not endpoint.enabled and delivery.event_type != PING:
        raise EndpointDisabled()
    delivery.status = "pending"
    delivery.round_start = delivery.attempts + 1
    delivery.next_attempt_at = utcnow()
    schedule(session, jobs, delivery)
    await session.flush()
    return delivery


async def prune_deliveries(state: AppState) -> int:
    """Periodic job: remove the deliveries, with their attempt logs, that finished longer
    than `WEBHOOK_DELIVERY_RETENTION` ago (made and last attempted before it), in
    batches of one transaction each; one still pending stays. Returns how many went."""
    before = utcnow() - timedelta(seconds=state.settings.webhook_delivery_retention)
    return await in_batches(
        state.sessionmaker,
        partial(repository.prune_deliveries, before=before, batch=PRUNE_BATCH),
        PRUNE_BATCH,
    )
