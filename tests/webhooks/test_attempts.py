"""Every attempt of a delivery is logged and visible; failures (an error status, a
redirect, a timeout, a refused connection) are retried with backoff up to
`WEBHOOK_MAX_ATTEMPTS`; an admin sends one again; secrets rotate with an overlap; an
endpoint that keeps failing is disabled and the admins are told."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.webhooks.models import WebhookEndpoint
from tests.factories import ADMIN_EMAIL, Account, assert_error
from tests.http_receiver import Answer, Receiver
from tests.jobs import settle
from tests.patterns.helpers import create_pattern
from tests.smtp_server import free_port
from tests.webhooks.conftest import MAX_ATTEMPTS
from tests.webhooks.helpers import BASE, create_endpoint, deliveries, get_ok, verified

ATTEMPT_FIELDS = {
    "number",
    "attemptedAt",
    "durationMs",
    "succeeded",
    "responseStatus",
    "responseBody",
    "error",
}


async def _ping(client: httpx.AsyncClient, admin: Account, endpoint_id: str) -> str:
    response = await client.post(f"{BASE}/{endpoint_id}/test", headers=admin.headers)
    assert response.status_code == 202, response.text
    delivery_id: str = response.json()["data"]["id"]
    return delivery_id


async def _detail(client: httpx.AsyncClient, admin: Account, delivery_id: str) -> dict[str, Any]:
    return await get_ok(client, admin, f"/deliveries/{delivery_id}")


async def test_a_failing_delivery_is_retried_until_it_succeeds_each_attempt_logged(
    client: httpx.AsyncClient, state: AppState, admin: Account, receiver: Receiver
) -> None:
    receiver.answer_next(Answer(503, b"busy"), Answer(500, b"oops"))
    endpoint = await create_endpoint(client, admin, receiver.url)
    delivery_id = await _ping(client, admin, endpoint["id"])

    await settle(state)

    detail = await _detail(client, admin, delivery_id)
    assert detail["status"] == "succeeded"
    assert detail["attempts"] == 3
    assert detail["payload"]["type"] == "webhook.ping"
    log = detail["attemptLog"]
    assert [set(a) for a in log] == [ATTEMPT_FIELDS] * 3
    assert [(a["number"], a["succeeded"], a["responseStatus"]) for a in log] == [
        (1, False, 503),
        (2, False, 500),
        (3, True, 200),
    ]
    assert [a["error"] for a in log] == ["HTTP 503", "HTTP 500", None]
    assert [a["responseBody"] for a in log] == ["busy", "oops", "ok"]
    assert all(a["durationMs"] >= 0 for a in log)
    # The same message each time: one id, each attempt signed afresh.
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery_id}
    for request in receiver.requests:
        verified(request, endpoint["secret"])
    assert (await get_ok(client, admin, f"/{endpoint['id']}"))["failingSince"] is None


async def test_a_delivery_that_keeps_failing_is_given_up_after_the_last_attempt(
    client: httpx.AsyncClient, state: AppState, admin: Account, receiver: Receiver
) -> None:
    receiver.answer(500, b"down")
    endpoint = await create_endpoint(client, admin, receiver.url)
    delivery_id = await _ping(client, admin, endpoint["id"])

    await settle(state)

    assert len(receiver.requests) == MAX_ATTEMPTS
    [failed] = await deliveries(client, admin, endpoint["id"], "?status=failed")
    assert failed["id"] == delivery_id
    assert failed["attempts"] == MAX_ATTEMPTS
    assert failed["lastResponseStatus"] == 500
    assert failed["nextAttemptAt"] is None
    assert await deliveries(client, admin, endpoint["id"], "?status=succeeded") == []
    # Failing for a moment does not disable the endpoint; it shows since when it fails.
    after = await get_ok(client, admin, f"/{endpoint['id']}")
    assert after["enabled"] is True
    assert after["failingSince"] is not None


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    client: httpx.AsyncClient, state: AppState, admin: Account, receiver: Receiver
) -> None:
    receiver.answer_next(Answer(302, b"", headers={"Location": f"{receiver.url}/elsewhere"}))
    endpoint = await create_endpoint(client, admin, receiver.url)
    delivery_id = await _ping(client, admin, endpoint["id"])

    await settle(state)

    log = (await _detail(client, admin, delivery_id))["attemptLog"]
    assert (log[0]["responseStatus"], log[0]["error"]) == (302, "redirect (302) not followed")
    assert log[1]["succeeded"] is True
    assert [r.path for r in receiver.requests] == ["/hooks", "/hooks"]


async def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    client: httpx.AsyncClient, state: AppState, admin: Account, receiver: Receiver
) -> None:
    receiver.answer_next(Answer(hold=True))
    endpoint = await create_endpoint(client, admin, receiver.url)
    delivery_id = await _ping(client, admin, endpoint["id"])

    await settle(state)

    log = (await _detail(client, admin, delivery_id))["attemptLog"]
    assert log[0]["succeeded"] is False
    assert log[0]["responseStatus"] is None
    assert log[0]["error"].startswith("timeout: ")
    assert log[1]["succeeded"] is True


async def test_a_refused_connection_is_a_failed_attempt(
    client: httpx.AsyncClient, state: AppState, admin: Account
) -> None:
    endpoint = await create_endpoint(client, admin, f"http://127.0.0.1:{free_port()}/hooks")
    delivery_id = await _ping(client, admin, endpoint["id"])

    await settle(state)

    detail = await _detail(client, admin, delivery_id)
    assert detail["status"] == "failed"
    assert [a["error"].split(":")[0] for a in detail["attemptLog"]] == ["connection"] * 3


async def test_an_admin_redelivers_a_failed_delivery(
    client: httpx.AsyncClient, state: AppState, admin: Account, receiver: Receiver
) -> None:
    receiver.answer(500)
    endpoint = await create_endpoint(client, admin, receiver.url)
    delivery_id = await _ping(client, admin, endpoint["id"])
    await settle(state)
    receiver.answer(204, b"")

    response = await client.post(
        f"{BASE}/deliveries/{delivery_id}/redeliver", headers=admin.headers
    )
    await settle(state)

    assert response.status_code == 202, response.text
    assert response.json()["data"]["status"] == "pending"
    detail = await _detail(client, admin, delivery_id)
    assert detail["status"] == "succeeded"
    assert [a["responseStatus"] for a in detail["attemptLog"]] == [500] * MAX_ATTEMPTS + [204]
    assert receiver.requests[-1].headers["webhook-id"] == delivery_id
    verified(receiver.requests[-1], endpoint["secret"])


async def test_a_delivery_to_a_disabled_endpoint_cannot_be_redelivered(
    client: httpx.AsyncClient, state: AppState, admin: Account, owner: Account, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, admin, receiver.url)
    await create_pattern(client, owner, isPublic=True)
    await settle(state)
    [delivery] = await deliveries(client, admin, endpoint["id"])
    await client.patch(f"{BASE}/{endpoint['id']}", json={"enabled": False}, headers=admin.headers)

    response = await client.post(
        f"{BASE}/deliveries/{delivery['id']}/redeliver", headers=admin.headers
    )

    assert_error(response, 409, "CONFLICT")
    assert (await _detail(client, admin, delivery["id"]))["status"] == "succeeded"


async def test_a_pattern_made_private_since_is_not_sent_again(
    client: httpx.AsyncClient, state: AppState, admin: Account, owner: Account, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, admin, receiver.url, ["pattern.created"])
    pattern = await create_pattern(client, owner, isPublic=True)
    await settle(state)
    [delivery] = await deliveries(client, admin, endpoint["id"])
    hidden = await client.put(
        f"/api/patterns/{pattern['id']}", json={"isPublic": False}, headers=owner.headers
    )
    assert hidden.status_code == 200, hidden.text

    await client.post(f"{BASE}/deliveries/{delivery['id']}/redeliver", headers=admin.headers)
    await settle(state)

    detail = await _detail(client, admin, delivery["id"])
    assert detail["status"] == "skipped"
    assert detail["lastError"] == "the pattern is no longer public"
    assert detail["attempts"] == 1
    assert len(receiver.requests) == 1


async def test_during_a_rotation_both_the_old_and_the_new_secret_verify(
    client: httpx.AsyncClient, state: AppState, admin: Account, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, admin, receiver.url)
    rotated = await client.post(f"{BASE}/{endpoint['id']}/rotate-secret", headers=admin.headers)
    new_secret = rotated.json()["data"]["secret"]

    await _ping(client, admin, endpoint["id"])
    await settle(state)

    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verified(request, endpoint["secret"])["type"] == "webhook.ping"
    assert verified(request, new_secret)["type"] == "webhook.ping"


async def test_after_the_overlap_only_the_new_secret_verifies(
    client: httpx.AsyncClient,
    state: AppState,
    db: AsyncSession,
    admin: Account,
    receiver: Receiver,
) -> None:
    endpoint = await create_endpoint(client, admin, receiver.url)
    rotated = await client.post(f"{BASE}/{endpoint['id']}/rotate-secret", headers=admin.headers)
    await db.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint["id"])
        .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()

    await _ping(client, admin, endpoint["id"])
    await settle(state)

    [request] = receiver.requests
    assert verified(request, rotated.json()["data"]["secret"])["type"] == "webhook.ping"
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body, request.headers)


DISABLED_SUBJECT = "A webhook endpoint was disabled"


def _notices_to(outbox: Path, address: str) -> list[Any]:
    messages = [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(outbox.glob("*.eml"))
    ]
    return [m for m in messages if m["To"] == address and m["Subject"] == DISABLED_SUBJECT]


async def test_an_endpoint_failing_for_too_long_is_disabled_and_the_admins_told(
    client: httpx.AsyncClient,
    state: AppState,
    db: AsyncSession,
    admin: Account,
    owner: Account,
    receiver: Receiver,
    outbox: Path,
) -> None:
    receiver.answer(500)
    endpoint = await create_endpoint(client, admin, receiver.url, ["pattern.created"])
    await db.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint["id"])
        .values(failing_since=utcnow() - timedelta(days=5, seconds=1))
    )
    await db.commit()

    await create_pattern(client, owner, isPublic=True)
    await settle(state)

    after = await get_ok(client, admin, f"/{endpoint['id']}")
    assert after["enabled"] is False
    assert after["disabledReason"] == "failing"
    # Disabled at the failed attempt: no retries after it.
    [delivery] = await deliveries(client, admin, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    [mail] = _notices_to(outbox, ADMIN_EMAIL)
    assert endpoint["id"] in mail.get_content()
    assert receiver.url in mail.get_content()
    assert _notices_to(outbox, owner.email) == []
