"""Queries of the webhooks domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.pagination import PageParams, Pagination, paginate
from beatmachine.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


async def endpoints_page(
    session: AsyncSession, params: PageParams
) -> tuple[list[WebhookEndpoint], Pagination]:
    """A page of every endpoint, the newest first."""
    statement = select(WebhookEndpoint).order_by(
        WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc()
    )
    return await paginate(session, statement, params)


async def subscribed(session: AsyncSession, event_type: str) -> list[WebhookEndpoint]:
    """The enabled endpoints that receive `event_type` (few: filtered here, not in SQL,
    since JSON containment differs between the databases)."""
    rows = await session.execute(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)
    )
    return [endpoint for endpoint in rows.scalars() if event_type in endpoint.events]


async def deliveries_page(
    session: AsyncSession, endpoint_id: str, params: PageParams, status: str | None
) -> tuple[list[WebhookDelivery], Pagination]:
    """A page of an endpoint's deliveries, the newest first, of one status if given."""
    statement = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status)
    statement = statement.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    return await paginate(session, statement, params)


async def attempts_of(session: AsyncSession, delivery_id: str) -> list[WebhookAttempt]:
    """Every attempt of a delivery, the first first."""
    rows = await session.execute(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.number)
    )
    return list(rows.scalars())


async def prune_deliveries(session: AsyncSession, before: datetime, batch: int) -> int:
    """Delete up to `batch` finished deliveries (with their attempts) made and last
    attempted before `before`, the oldest first; returns how many went."""
    old = list(
        (
            await session.execute(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.created_at < before,
                    WebhookDelivery.status != "pending",
                    or_(
                        WebhookDelivery.last_attempt_at.is_(None),
                        WebhookDelivery.last_attempt_at < before,
                    ),
                )
                .order_by(WebhookDelivery.created_at)
                .limit(batch)
            )
        ).scalars()
    )
    if not old:
        return 0
    # The attempts first: on SQLite a cascade would take them one delivery at a time.
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(old)))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(old)))
    return len(old)
