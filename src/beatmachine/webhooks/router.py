"""HTTP routes of the webhooks domain, for administrators: endpoints, their deliveries,
redelivery, secret rotation and test pings."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from beatmachine.auth.dependencies import AdminUser
from beatmachine.core.db import SessionDep
from beatmachine.core.pagination import PageDep
from beatmachine.core.schemas import Envelope, Message, error_responses, ok
from beatmachine.core.state import StateDep
from beatmachine.webhooks import service
from beatmachine.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from beatmachine.webhooks.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryList,
    DeliveryOut,
    DeliveryStatus,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointOut,
    EndpointUpdate,
    SecretRotated,
)

router = APIRouter(prefix="/admin/webhooks", tags=["webhooks"])

ADMIN_ERRORS = (401, 403)


def _endpoint(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(endpoint)


def _delivery(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(delivery)


def _attempt(attempt: WebhookAttempt) -> AttemptOut:
    return AttemptOut.model_validate(attempt)


@router.post(
    "",
    status_code=201,
    response_model=Envelope[EndpointCreated],
    responses=error_responses(*ADMIN_ERRORS),
)
async def create_endpoint(
    body: EndpointCreate, session: SessionDep, state: StateDep, admin: AdminUser
) -> Envelope[EndpointCreated]:
    """Register an endpoint. The answer holds its signing secret (`whsec_…`), shown only
    here and by a rotation."""
    endpoint = await service.create_endpoint(session, state.settings, admin, body)
    return ok(EndpointCreated(**_endpoint(endpoint).model_dump(), secret=endpoint.secret))


@router.get("", response_model=Envelope[EndpointList], responses=error_responses(*ADMIN_ERRORS))
async def list_endpoints(
    session: SessionDep, page: PageDep, _admin: AdminUser
) -> Envelope[EndpointList]:
    """Every endpoint, the newest first."""
    rows, pagination = await service.list_endpoints(session, page)
    return ok(EndpointList(endpoints=[_endpoint(row) for row in rows], pagination=pagination))


@router.get(
    "/deliveries/{delivery_id}",
    response_model=Envelope[DeliveryDetail],
    responses=error_responses(*ADMIN_ERRORS, 404),
)
async def get_delivery(
    delivery_id: str, session: SessionDep, _admin: AdminUser
) -> Envelope[DeliveryDetail]:
    """One delivery with the body it sends and every attempt (status, response code,
    duration, error, the first bytes of the answer)."""
    found = await service.delivery_with_attempts(session, delivery_id)
    return ok(
        DeliveryDetail(
            **_delivery(found.delivery).model_dump(),
            payload=json.loads(found.delivery.payload),
            attempt_log=[_attempt(attempt) for attempt in found.attempts],
        )
    )


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=Envelope[DeliveryOut],
    responses=error_responses(*ADMIN_ERRORS, 404, 409),
)
async def redeliver(
    delivery_id: str, session: SessionDep, state: StateDep, _admin: AdminUser
) -> Envelope[DeliveryOut]:
    """Send a delivery again (202: in the background), same id and body, with a fresh
    round of retries. One still being attempted, or to a disabled endpoint, is 409."""
    return ok(_delivery(await service.redeliver(session, state.jobs, delivery_id)))


@router.get(
    "/{endpoint_id}",
    response_model=Envelope[EndpointOut],
    responses=error_responses(*ADMIN_ERRORS, 404),
)
async def get_endpoint(
    endpoint_id: str, session: SessionDep, _admin: AdminUser
) -> Envelope[EndpointOut]:
    """One endpoint (its secret is not shown)."""
    return ok(_endpoint(await service.get_endpoint(session, endpoint_id)))


@router.patch(
    "/{endpoint_id}",
    response_model=Envelope[EndpointOut],
    responses=error_responses(*ADMIN_ERRORS, 404),
)
async def update_endpoint(
    endpoint_id: str, body: EndpointUpdate, session: SessionDep, state: StateDep, _admin: AdminUser
) -> Envelope[EndpointOut]:
    """Change the URL, events or description; `enabled: false` disables the endpoint,
    `enabled: true` enables it again (also one disabled for failing)."""
    return ok(_endpoint(await service.update_endpoint(session, state.settings, endpoint_id, body)))


@router.delete(
    "/{endpoint_id}",
    response_model=Envelope[Message],
    responses=error_responses(*ADMIN_ERRORS, 404),
)
async def delete_endpoint(
    endpoint_id: str, session: SessionDep, _admin: AdminUser
) -> Envelope[Message]:
    """Remove an endpoint with its deliveries."""
    await service.delete_endpoint(session, endpoint_id)
    return ok(Message(message="Webhook endpoint deleted."))


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=Envelope[SecretRotated],
    responses=error_responses(*ADMIN_ERRORS, 404),
)
async def rotate_secret(
    endpoint_id: str, session: SessionDep, state: StateDep, _admin: AdminUser
) -> Envelope[SecretRotated]:
    """A new signing secret (shown once). Deliveries carry signatures of both the new and
    the previous secret until `previousSecretExpiresAt` (`WEBHOOK_SECRET_OVERLAP`)."""
    endpoint, secret = await service.rotate_secret(session, state.settings, endpoint_id)
    return ok(
        SecretRotated(
            secret=secret,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
            endpoint=_endpoint(endpoint),
        )
    )


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=Envelope[DeliveryList],
    responses=error_responses(*ADMIN_ERRORS, 404),
)
async def list_deliveries(
    endpoint_id: str,
    session: SessionDep,
    page: PageDep,
    _admin: AdminUser,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> Envelope[DeliveryList]:
    """The endpoint's deliveries, the newest first; `status` keeps those of one status."""
    rows, pagination = await service.list_deliveries(session, endpoint_id, page, status)
    return ok(DeliveryList(deliveries=[_delivery(row) for row in rows], pagination=pagination))


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=Envelope[DeliveryOut],
    responses=error_responses(*ADMIN_ERRORS, 404),
)
async def send_test(
    endpoint_id: str, session: SessionDep, state: StateDep, _admin: AdminUser
) -> Envelope[DeliveryOut]:
    """Send a `webhook.ping` delivery to the endpoint (a disabled one too)."""
    return ok(_delivery(await service.send_ping(session, state.jobs, endpoint_id)))
