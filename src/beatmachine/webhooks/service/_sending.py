"""One attempt of a delivery (the `webhooks.deliver` job): checked, signed, sent through
the outbound guard, logged; retried with backoff, and an endpoint that keeps failing for
`WEBHOOK_DISABLE_AFTER` is disabled and the administrators are told.

No transaction is held while the request is out: the delivery is read and checked in
one, the attempt recorded in another. A job that finds the delivery moved on (its attempt
made already by a job delivered twice) does nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.db import transaction
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.jobs.middleware import backoff_delay
from beatmachine.core.outbound import OutboundClient, OutboundError, parse_networks
from beatmachine.core.state import AppState
from beatmachine.patterns import service as patterns_service
from beatmachine.patterns.exceptions import PatternNotFound
from beatmachine.users import service as users_service
from beatmachine.users.exceptions import UserNotFound
from beatmachine.webhooks import signing
from beatmachine.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from beatmachine.webhooks.schemas import PING
from beatmachine.webhooks.service._deliveries import schedule

log = structlog.get_logger(__name__)

# How much of a receiver's answer is kept in the attempt log.
RESPONSE_BODY_MAX = 2048
USER_AGENT = "SalsaNor-BeatMachine-Webhooks/1.0"
PATTERN_EVENTS = ("pattern.created", "pattern.liked", "comment.created")


@dataclass(frozen=True)
class _Due:
    delivery_id: str
    endpoint_id: str
    url: str
    body: str
    secrets: list[str]
    number: int


@dataclass(frozen=True)
class _Outcome:
    succeeded: bool
    duration_ms: int
    response_status: int | None = None
    response_body: str | None = None
    error: str | None = None


def outbound_client(state: AppState) -> OutboundClient:
    """The guarded HTTP client deliveries go out through (one per process)."""
    settings = state.settings
    return OutboundClient(
        user_agent=USER_AGENT,
        connect_timeout=settings.webhook_connect_timeout,
        read_timeout=settings.webhook_read_timeout,
        allowed_networks=parse_networks(settings.outbound_allowed_networks),
    )


async def deliver(state: AppState, client: OutboundClient, delivery_id: str, number: int) -> None:
    """Make attempt `number` of a delivery, record it, and queue the next one when it
    failed and retries are left."""
    async with transaction(state.sessionmaker) as session:
        due = await _due(session, delivery_id, number)
    if due is None:
        return
    outcome = await _attempt(client, due)
    async with transaction(state.sessionmaker) as session:
        await _record(session, state, due, outcome)


def _finish(delivery: WebhookDelivery, status: str, error: str) -> None:
    delivery.status = status
    delivery.last_error = error
    delivery.next_attempt_at = None


async def _due(session: AsyncSession, delivery_id: str, number: int) -> _Due | None:
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.status != "pending" or delivery.attempts != number - 1:
        log.info("webhook_attempt_stale", delivery_id=delivery_id, number=number)
        return None
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    assert endpoint is not None  # deliveries go with their endpoint
    if not endpoint.enabled and delivery.event_type != PING:
        _finish(delivery, "failed", "the endpoint is disabled")
        return None
    hidden = await _no_longer_public(session, delivery)
    if hidden is not None:
        _finish(delivery, "skipped", hidden)
        return None
    now = utcnow()
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        secrets.append(endpoint.previous_secret)
    return _Due(delivery.id, endpoint.id, endpoint.url, delivery.payload, secrets, number)


async def _no_longer_public(session: AsyncSession, delivery: WebhookDelivery) -> str | None:
    """Why the content of a delivery may not be sent any more, or None."""
    data = json.loads(delivery.payload)["data"]
    if delivery.event_type in PATTERN_EVENTS:
        try:
            pattern = await patterns_service.get_live(session, data["pattern"]["id"])
        except PatternNotFound:
            return "the pattern was deleted"
        return None if pattern.is_public else "the pattern is no longer public"
    if delivery.event_type == "user.followed":
        try:
            for role in ("follower", "followee"):
                await users_service.get_user(session, data[role]["id"])
        except UserNotFound:
            return "the account is gone"
    return None


def _text(value: str) -> str:
    # PostgreSQL text holds no NUL character.
    return value.replace("\x00", "\ufffd")


async def _attempt(client: OutboundClient, due: _Due) -> _Outcome:
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        **signing.headers(due.secrets, due.delivery_id, timestamp, due.body),
    }
    started = time.monotonic()
    try:
        response = await client.request(
            "POST", due.url, content=due.body.encode(), headers=headers, max_body=RESPONSE_BODY_MAX
        )
    except OutboundError as exc:
        return _Outcome(
            False, _elapsed_ms(started), error=_text(f"{exc.kind}: {exc}")[:RESPONSE_BODY_MAX]
        )
    body = _text(response.body.decode("utf-8", "replace")) + ("…" if response.truncated else "")
    succeeded = 200 <= response.status < 300
    error = None
    if 300 <= response.status < 400:
        error = f"redirect ({response.status}) not followed"
    elif not succeeded:
        error = f"HTTP {response.status}"
    return _Outcome(succeeded, _elapsed_ms(started), response.status, body, error)


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


async def _record(session: AsyncSession, state: AppState, due: _Due, outcome: _Outcome) -> None:
    # The endpoint's row first, then the delivery's: the order a deletion of the endpoint
    # takes them in (its cascade), so the two never wait for each other.
    endpoint = await session.get(WebhookEndpoint, due.endpoint_id, with_for_update=True)
    delivery = await session.get(WebhookDelivery, due.delivery_id, with_for_update=True)
    if endpoint is None or delivery is None:  # the endpoint was deleted meanwhile
        return
    now = utcnow()
    session.add(
        WebhookAttempt(
            id=new_id("wha"),
            delivery_id=delivery.id,
            number=due.number,
            attempted_at=now,
            duration_ms=outcome.duration_ms,
            succeeded=outcome.succeeded,
            response_status=outcome.response_status,
            response_body=outcome.response_body,
            error=outcome.error,
        )
    )
    delivery.attempts = due.number
    delivery.last_attempt_at = now
    delivery.last_response_status = outcome.response_status
    delivery.last_error = outcome.error
    if outcome.succeeded:
        delivery.status = "succeeded"
        delivery.next_attempt_at = None
        endpoint.failing_since = None
        await session.flush()
        return
    await _count_failure(session, state, endpoint)
    settings = state.settings
    made = due.number - delivery.round_start + 1
    if made < settings.webhook_max_attempts and (endpoint.enabled or delivery.event_type == PING):
        delay = backoff_delay(
            made, base=settings.webhook_retry_base_delay, cap=settings.webhook_retry_max_delay
        )
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        schedule(session, state.jobs, delivery, delay)
    else:
        delivery.status = "failed"
        delivery.next_attempt_at = None
    await session.flush()


async def _count_failure(session: AsyncSession, state: AppState, endpoint: WebhookEndpoint) -> None:
    """The endpoint has failed since its first failure after a success; once that is
    `WEBHOOK_DISABLE_AFTER` ago, it is disabled and every administrator is mailed."""
    now = utcnow()
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    limit = timedelta(seconds=state.settings.webhook_disable_after)
    if not endpoint.enabled or now - endpoint.failing_since < limit:
        return
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = "failing"
    endpoint.updated_at = now
    log.warning("webhook_endpoint_disabled", endpoint_id=endpoint.id, url=endpoint.url)
    text = (
        f"The webhook endpoint {endpoint.id} ({endpoint.url}) has failed every delivery "
        f"since {endpoint.failing_since.isoformat()} and has been disabled.\n\n"
        f"Description: {endpoint.description or '(none)'}\n\n"
        "Enable it again with PATCH /api/admin/webhooks/"
        f'{endpoint.id} {{"enabled": true}} once the receiver works.\n'
    )
    for address in await users_service.admin_emails(session, state.settings):
        state.mailer.queue(
            session, state.mailer.compose(address, "A webhook endpoint was disabled", text)
        )
