"""Access tokens on protected routes, logout, and refresh-token rotation."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager

from beatmachine.app import create_app
from beatmachine.core.config import Settings
from tests.factories import Account, assert_error, login, register

ME = "/api/users/me"
OTHER_SECRET = "another-secret-" + "y" * 40


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(settings: Settings, token: str) -> dict[str, Any]:
    """The verified claims of a token the server minted."""
    claims: dict[str, Any] = jwt.decode(
        token, settings.jwt_secret, algorithms=["HS256"], issuer="beatmachine"
    )
    return claims


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refreshToken": refresh_token})


@pytest.fixture
async def account(client: httpx.AsyncClient) -> Account:
    return await register(client)


@pytest.fixture
async def second_app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second API process (its own app instance) on the same database and Redis."""
    other = create_app(settings)
    async with LifespanManager(other):
        transport = httpx.ASGITransport(app=other, client=("203.0.113.7", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


# --- access tokens ---------------------------------------------------------------------


async def test_access_token_opens_protected_route(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get(ME, headers=account.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == account.id


async def test_missing_token_is_auth_required(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_non_bearer_scheme_is_auth_required(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get(ME, headers={"Authorization": f"Basic {account.token}"})

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_token_minted_with_the_server_secret_is_accepted(
    client: httpx.AsyncClient, settings: Settings, account: Account
) -> None:
    """The forging helpers of the tests below make tokens the server would accept."""
    claims = claims_of(settings, account.token)
    claims.update(iat=int(time.time()), exp=int(time.time()) + 300)

    response = await client.get(ME, headers=bearer(jwt.encode(claims, settings.jwt_secret)))

    assert response.status_code == 200, response.text


async def test_tampered_payload_is_auth_required(
    client: httpx.AsyncClient, settings: Settings, account: Account
) -> None:
    other = await register(client)
    header, _payload, signature = account.token.split(".")
    claims = claims_of(settings, account.token)
    claims["sub"] = other.id
    forged = ".".join([header, b64url(json.dumps(claims).encode()), signature])

    response = await client.get(ME, headers=bearer(forged))

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_tampered_signature_is_auth_required(
    client: httpx.AsyncClient, account: Account
) -> None:
    header, payload, signature = account.token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    response = await client.get(ME, headers=bearer(f"{header}.{payload}.{flipped}"))

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_alg_none_token_is_auth_required(
    client: httpx.AsyncClient, settings: Settings, account: Account
) -> None:
    claims = claims_of(settings, account.token)
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{header}.{b64url(json.dumps(claims).encode())}."

    response = await client.get(ME, headers=bearer(unsigned))

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_token_signed_with_another_key_is_auth_required(
    client: httpx.AsyncClient, settings: Settings, account: Account
) -> None:
    claims = claims_of(settings, account.token)

    response = await client.get(ME, headers=bearer(jwt.encode(claims, OTHER_SECRET)))

    assert_error(response, 401, "AUTH_REQUIRED")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_token_with_another_hmac_algorithm_is_auth_required(
    client: httpx.AsyncClient, settings: Settings, account: Account
) -> None:
    claims = claims_of(settings, account.token)
    token = jwt.encode(claims, settings.jwt_secret, algorithm="HS512")

    response = await client.get(ME, headers=bearer(token))

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_expired_token_is_auth_required(
    client: httpx.AsyncClient, settings: Settings, account: Account
) -> None:
    claims = claims_of(settings, account.token)
    claims.update(iat=int(time.time()) - 1000, exp=int(time.time()) - 100)

    response = await client.get(ME, headers=bearer(jwt.encode(claims, settings.jwt_secret)))

    assert_error(response, 401, "AUTH_REQUIRED")


@pytest.mark.parametrize(
    ("claim", "value"),
    [("iss", "someone-else"), ("typ", "refresh"), ("sid", "ses_0000000000000000")],
)
async def test_token_with_wrong_claim_is_auth_required(
    client: httpx.AsyncClient, settings: Settings, account: Account, claim: str, value: str
) -> None:
    claims = claims_of(settings, account.token)
    claims[claim] = value

    response = await client.get(ME, headers=bearer(jwt.encode(claims, settings.jwt_secret)))

    assert_error(response, 401, "AUTH_REQUIRED")


@pytest.mark.parametrize(
    "garbage", ["garbage", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9", "x" * 5000]
)
async def test_garbage_token_is_auth_required(client: httpx.AsyncClient, garbage: str) -> None:
    response = await client.get(ME, headers=bearer(garbage))

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_refresh_token_used_as_bearer_is_auth_required(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get(ME, headers=bearer(account.refresh_token))

    assert_error(response, 401, "AUTH_REQUIRED")


# --- logout ----------------------------------------------------------------------------


async def test_logout_returns_message(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post("/api/auth/logout", headers=account.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert set(body["data"]) == {"message"}
    assert isinstance(body["data"]["message"], str) and body["data"]["message"]


async def test_logout_ends_the_token(client: httpx.AsyncClient, account: Account) -> None:
    await client.post("/api/auth/logout", headers=account.headers)

    response = await client.get(ME, headers=account.headers)

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_logout_twice_is_auth_required(client: httpx.AsyncClient, account: Account) -> None:
    await client.post("/api/auth/logout", headers=account.headers)

    response = await client.post("/api/auth/logout", headers=account.headers)

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_logout_without_token_is_auth_required(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/logout")

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_logout_keeps_other_sessions_signed_in(
    client: httpx.AsyncClient, account: Account
) -> None:
    other_device = (await login(client, account.email)).json()["data"]["token"]

    await client.post("/api/auth/logout", headers=account.headers)

    assert (await client.get(ME, headers=bearer(other_device))).status_code == 200


async def test_token_works_on_a_second_app_instance(
    client: httpx.AsyncClient, second_app_client: httpx.AsyncClient, account: Account
) -> None:
    response = await second_app_client.get(ME, headers=account.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == account.id


async def test_logout_ends_the_token_on_a_second_app_instance(
    client: httpx.AsyncClient, second_app_client: httpx.AsyncClient, account: Account
) -> None:
    assert (await second_app_client.get(ME, headers=account.headers)).status_code == 200

    await client.post("/api/auth/logout", headers=account.headers)

    assert_error(await second_app_client.get(ME, headers=account.headers), 401, "AUTH_REQUIRED")


# --- refresh ---------------------------------------------------------------------------


async def test_refresh_returns_a_new_token_pair(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await refresh(client, account.refresh_token)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert set(data) == {"token", "refreshToken", "tokenType", "expiresIn"}
    assert data["token"] != account.token
    assert data["refreshToken"] != account.refresh_token
    assert data["tokenType"] == "Bearer"
    assert data["expiresIn"] == 900


async def test_refreshed_access_token_works(client: httpx.AsyncClient, account: Account) -> None:
    token = (await refresh(client, account.refresh_token)).json()["data"]["token"]

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == account.id


async def test_refreshed_refresh_token_can_be_refreshed_again(
    client: httpx.AsyncClient, account: Account
) -> None:
    second = (await refresh(client, account.refresh_token)).json()["data"]["refreshToken"]

    response = await refresh(client, second)

    assert response.status_code == 200, response.text


async def test_refresh_token_reuse_is_invalid_token(
    client: httpx.AsyncClient, account: Account
) -> None:
    await refresh(client, account.refresh_token)

    response = await refresh(client, account.refresh_token)

    assert_error(response, 401, "INVALID_TOKEN")


async def test_refresh_token_reuse_revokes_the_newest_tokens(
    client: httpx.AsyncClient, account: Account
) -> None:
    newest = (await refresh(client, account.refresh_token)).json()["data"]

    await refresh(client, account.refresh_token)

    assert_error(await client.get(ME, headers=bearer(newest["token"])), 401, "AUTH_REQUIRED")
    assert_error(await client.get(ME, headers=account.headers), 401, "AUTH_REQUIRED")
    assert_error(await refresh(client, newest["refreshToken"]), 401, "INVALID_TOKEN")


async def test_refresh_token_reuse_leaves_other_sessions_alone(
    client: httpx.AsyncClient, account: Account
) -> None:
    other_device = (await login(client, account.email)).json()["data"]
    await refresh(client, account.refresh_token)

    await refresh(client, account.refresh_token)

    assert (await client.get(ME, headers=bearer(other_device["token"]))).status_code == 200
    assert (await refresh(client, other_device["refreshToken"])).status_code == 200


async def test_unknown_refresh_token_is_invalid_token(client: httpx.AsyncClient) -> None:
    response = await refresh(client, "not-a-refresh-token")

    assert_error(response, 401, "INVALID_TOKEN")


async def test_access_token_as_refresh_token_is_invalid_token(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await refresh(client, account.token)

    assert_error(response, 401, "INVALID_TOKEN")


async def test_refresh_after_logout_is_invalid_token(
    client: httpx.AsyncClient, account: Account
) -> None:
    await client.post("/api/auth/logout", headers=account.headers)

    response = await refresh(client, account.refresh_token)

    assert_error(response, 401, "INVALID_TOKEN")


@pytest.mark.parametrize(
    "payload",
    [{}, {"refreshToken": ""}, {"refreshToken": 5}, {"refresh_token": "x"}],
    ids=["missing", "empty", "number", "snake-case"],
)
async def test_refresh_malformed_body_is_validation_error(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await client.post("/api/auth/refresh", json=payload)

    assert_error(response, 422, "VALIDATION_ERROR")
