"""Per-client request limits on `/api`: headers on every response, 429 past the limit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.config import Settings
from beatmachine.users.models import User
from tests.conftest import Backend, delete_redis_prefix, make_settings
from tests.core.apps import OTHER_PEER, client_for, running_app
from tests.factories import assert_error, register

ANONYMOUS_LIMIT = 4
AUTHENTICATED_LIMIT = 7
WINDOW = 900
RATE_LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "RATE_LIMIT_ANONYMOUS": ANONYMOUS_LIMIT,
        "RATE_LIMIT_AUTHENTICATED": AUTHENTICATED_LIMIT,
        "RATE_LIMIT_WINDOW": WINDOW,
        "MAX_BODY_BYTES": 1024,
    }


@pytest.fixture
async def other_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same app from another IP address."""
    async with client_for(app, OTHER_PEER) as client:
        yield client


async def use_up(client: httpx.AsyncClient, count: int, **kwargs: Any) -> list[httpx.Response]:
    return [await client.get("/api/users/usr_nobody", **kwargs) for _ in range(count)]


def remaining(response: httpx.Response) -> int:
    return int(response.headers["x-ratelimit-remaining"])


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/api/openapi.json", {}, 200),
        ("GET", "/api/users/me", {}, 401),
        ("GET", "/api/users/usr_nobody", {}, 404),
        ("GET", "/api/no-such-route", {}, 404),
        ("GET", "/api/auth/login", {}, 405),
        ("POST", "/api/auth/login", {"json": {"email": "x"}}, 422),
        (
            "POST",
            "/api/auth/login",
            {"content": b"x=1", "headers": {"Content-Type": "text/plain"}},
            415,
        ),
        ("POST", "/api/auth/login", {"json": {"email": "x" * 2000, "password": "p"}}, 413),
    ],
    ids=["200", "401", "404", "404-route", "405", "422", "415", "413"],
)
async def test_every_api_response_carries_rate_limit_headers(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    before = int(time.time())
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status
    assert response.headers["x-ratelimit-limit"] == str(ANONYMOUS_LIMIT)
    assert remaining(response) == ANONYMOUS_LIMIT - 1
    # Whole seconds: `before` is truncated, the header rounded up, Redis TTLs are whole.
    assert before < int(response.headers["x-ratelimit-reset"]) <= before + WINDOW + 3


async def test_remaining_counts_down_per_request(client: httpx.AsyncClient) -> None:
    responses = await use_up(client, 3)
    assert [remaining(response) for response in responses] == [
        ANONYMOUS_LIMIT - 1,
        ANONYMOUS_LIMIT - 2,
        ANONYMOUS_LIMIT - 3,
    ]


async def test_anonymous_client_over_limit_gets_429_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    allowed = await use_up(client, ANONYMOUS_LIMIT)
    assert [response.status_code for response in allowed] == [404] * ANONYMOUS_LIMIT

    response = await client.get("/api/users/usr_nobody")
    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert response.headers["x-ratelimit-limit"] == str(ANONYMOUS_LIMIT)
    assert response.headers["x-ratelimit-remaining"] == "0"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW + 2  # whole-second rounding, as above
    assert int(response.headers["x-ratelimit-reset"]) >= int(time.time())


async def test_refused_request_does_not_reach_the_endpoint(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await use_up(client, ANONYMOUS_LIMIT)
    response = await client.post(
        "/api/auth/register",
        json={
            "email": "late@example.com",
            "password": "correct horse battery",
            "displayName": "Late",
            "acceptTerms": True,
        },
    )
    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert await db.scalar(select(User).where(User.email == "late@example.com")) is None


async def test_anonymous_limit_is_counted_per_ip(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    await use_up(client, ANONYMOUS_LIMIT)
    assert (await client.get("/api/users/usr_nobody")).status_code == 429

    response = await other_client.get("/api/users/usr_nobody")
    assert response.status_code == 404
    assert remaining(response) == ANONYMOUS_LIMIT - 1


async def test_forwarded_for_header_from_untrusted_peer_does_not_dodge_the_limit(
    client: httpx.AsyncClient,
) -> None:
    for hop in range(ANONYMOUS_LIMIT):
        await client.get("/api/users/usr_nobody", headers={"X-Forwarded-For": f"10.0.0.{hop}"})
    response = await client.get("/api/users/usr_nobody", headers={"X-Forwarded-For": "10.0.9.9"})
    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")


async def test_authenticated_requests_are_counted_per_user_not_per_ip(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)  # one anonymous request from this IP
    await use_up(client, ANONYMOUS_LIMIT - 1)
    assert (await client.get("/api/users/usr_nobody")).status_code == 429

    response = await client.get("/api/users/me", headers=account.headers)
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit"] == str(AUTHENTICATED_LIMIT)
    assert remaining(response) == AUTHENTICATED_LIMIT - 1


async def test_authenticated_user_over_limit_gets_429(client: httpx.AsyncClient) -> None:
    account = await register(client)
    allowed = await use_up(client, AUTHENTICATED_LIMIT, headers=account.headers)
    assert [response.status_code for response in allowed] == [404] * AUTHENTICATED_LIMIT

    response = await client.get("/api/users/me", headers=account.headers)
    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert response.headers["x-ratelimit-limit"] == str(AUTHENTICATED_LIMIT)
    assert int(response.headers["retry-after"]) >= 1


async def test_each_user_has_a_limit_of_their_own(client: httpx.AsyncClient) -> None:
    first = await register(client)
    second = await register(client)
    await use_up(client, AUTHENTICATED_LIMIT, headers=first.headers)
    assert (await client.get("/api/users/me", headers=first.headers)).status_code == 429

    response = await client.get("/api/users/me", headers=second.headers)
    assert response.status_code == 200
    assert remaining(response) == AUTHENTICATED_LIMIT - 1


async def test_invalid_token_is_limited_as_anonymous(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/users/me", headers={"Authorization": "Bearer not.a.valid-token"}
    )
    assert_error(response, 401, "AUTH_REQUIRED")
    assert response.headers["x-ratelimit-limit"] == str(ANONYMOUS_LIMIT)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_operations_endpoints_are_not_rate_limited(
    client: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    scraper = {"Authorization": f"Bearer {settings.metrics_token}"}
    await use_up(client, ANONYMOUS_LIMIT + 1)
    for _ in range(3):
        response = await client.get(path, headers=scraper if path == "/metrics" else None)
        assert response.status_code == 200
        assert "x-ratelimit-limit" not in response.headers


async def test_disabled_rate_limiting_refuses_nothing(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(
        backend, tmp_path / "var", RATE_LIMIT_ENABLED=False, RATE_LIMIT_ANONYMOUS=1
    )
    async with running_app(settings) as app, client_for(app) as client:
        responses = await use_up(client, 5)
    assert [response.status_code for response in responses] == [404] * 5


async def test_app_instances_sharing_redis_share_one_limit(
    backend: Backend, app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    if not backend.redis_url:
        pytest.skip("a limit shared between app instances needs Redis (postgres back end only)")
    half = ANONYMOUS_LIMIT // 2
    async with running_app(settings) as second_app, client_for(second_app) as second_client:
        assert [r.status_code for r in await use_up(client, half)] == [404] * half
        from_second = await use_up(second_client, ANONYMOUS_LIMIT - half)
        assert [r.status_code for r in from_second] == [404] * (ANONYMOUS_LIMIT - half)
        assert remaining(from_second[-1]) == 0

        assert_error(await client.get("/api/users/usr_nobody"), 429, "RATE_LIMIT_EXCEEDED")
        assert_error(await second_client.get("/api/users/usr_nobody"), 429, "RATE_LIMIT_EXCEEDED")
    await delete_redis_prefix(backend.redis_url, backend.redis_prefix)
