"""Webhook endpoints: registered, listed, changed, disabled, deleted; secrets rotated."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.config import Settings
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.outbound import OutboundRefused, check_url, parse_networks
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.users.models import User
from beatmachine.webhooks import repository, signing
from beatmachine.webhooks.exceptions import InvalidEndpointUrl, WebhookNotFound
from beatmachine.webhooks.models import WebhookEndpoint
from beatmachine.webhooks.schemas import EndpointCreate, EndpointUpdate


def _checked_url(settings: Settings, url: str) -> str:
    try:
        check_url(url, parse_networks(settings.outbound_allowed_networks))
    except OutboundRefused as refused:
        raise InvalidEndpointUrl(str(refused)) from None
    return url


async def create_endpoint(
    session: AsyncSession, settings: Settings, admin: User, body: EndpointCreate
) -> WebhookEndpoint:
    """Register an endpoint with a fresh signing secret. Its URL must be http(s), name a
    host, hold no credentials and not be a literal address that outgoing requests may not
    reach (`InvalidEndpointUrl`)."""
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=new_id("whk"),
        url=_checked_url(settings, body.url),
        description=body.description,
        events=list(body.events),
        enabled=True,
        secret=signing.new_secret(),
        created_by=admin.id,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def list_endpoints(
    session: AsyncSession, params: PageParams
) -> tuple[list[WebhookEndpoint], Pagination]:
    """A page of every endpoint, the newest first."""
    return await repository.endpoints_page(session, params)


async def get_endpoint(
    session: AsyncSession, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint:
    """The endpoint with this id, or `WebhookNotFound`; `for_update` locks its row."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=for_update)
    if endpoint is None:
        raise WebhookNotFound()
    return endpoint


async def update_endpoint(
    session: AsyncSession, settings: Settings, endpoint_id: str, changes: EndpointUpdate
) -> WebhookEndpoint:
    """Apply the fields sent. `enabled: false` disables the endpoint (no more deliveries);
    `enabled: true` enables it again and forgets its failures."""
    endpoint = await get_endpoint(session, endpoint_id, for_update=True)
    fields = changes.model_fields_set
    now = utcnow()
    if "url" in fields and changes.url is not None:
        endpoint.url = _checked_url(settings, changes.url)
    if "events" in fields and changes.events is not None:
        endpoint.events = list(changes.events)
    if "description" in fields and changes.description is not None:
        endpoint.description = changes.description
    if "enabled" in fields and changes.enabled is not None and changes.enabled != endpoint.enabled:
        endpoint.enabled = changes.enabled
        endpoint.failing_since = None
        endpoint.disabled_at = None if changes.enabled else now
        endpoint.disabled_reason = None if changes.enabled else "admin"
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint_id: str) -> None:
    """Remove an endpoint with its deliveries and their attempts."""
    endpoint = await get_endpoint(session, endpoint_id, for_update=True)
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, settings: Settings, endpoint_id: str
) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret; the one it had keeps signing beside it for
    `WEBHOOK_SECRET_OVERLAP` (an earlier previous secret is dropped). Returns the
    endpoint and its new secret."""
    endpoint = await get_endpoint(session, endpoint_id, for_update=True)
    now = utcnow()
    secret = signing.new_secret()
    if settings.webhook_secret_overlap > 0:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + timedelta(
            seconds=settings.webhook_secret_overlap
        )
    else:
        endpoint.previous_secret = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret = secret
    endpoint.secret_rotated_at = now
    endpoint.updated_at = now
    await session.flush()
    return endpoint, secret
