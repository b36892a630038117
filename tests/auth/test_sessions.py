"""GET /api/auth/sessions and DELETE /api/auth/sessions/{id}: one's own signed-in devices."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.factories import Account, assert_error, register

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
SESSION_ID = re.compile(r"^ses_[0-9a-z]{16}$")
PEER_IP = "203.0.113.7"
PHONE = "BeatMachine-Test/1.0 (phone)"
LAPTOP = "BeatMachine-Test/1.0 (laptop)"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def parse_z(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def sign_in(client: httpx.AsyncClient, account: Account, user_agent: str) -> str:
    """Log in from another device; returns that device's access token."""
    response = await client.post(
        "/api/auth/login",
        json={"email": account.email, "password": account.password},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["token"]
    return token


async def sessions_of(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    response = await client.get("/api/auth/sessions", headers=bearer(token))
    assert response.status_code == 200, response.text
    sessions: list[dict[str, Any]] = response.json()["data"]["sessions"]
    return sessions


async def current_session_id(client: httpx.AsyncClient, token: str) -> str:
    [current] = [item for item in await sessions_of(client, token) if item["current"]]
    session_id: str = current["id"]
    return session_id


@pytest.fixture
async def account(client: httpx.AsyncClient) -> Account:
    return await register(client)


async def test_list_sessions_shows_each_session_with_its_details(
    client: httpx.AsyncClient, account: Account
) -> None:
    phone = await sign_in(client, account, PHONE)
    await sign_in(client, account, LAPTOP)

    response = await client.get("/api/auth/sessions", headers=bearer(phone))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    sessions = body["data"]["sessions"]
    assert len(sessions) == 3
    for item in sessions:
        assert set(item) == {
            "id",
            "ip",
            "userAgent",
            "createdAt",
            "lastUsedAt",
            "expiresAt",
            "current",
        }
        assert SESSION_ID.match(item["id"])
        assert item["ip"] == PEER_IP
        for field in ("createdAt", "lastUsedAt", "expiresAt"):
            assert ISO_Z.match(item[field]), item[field]
        assert parse_z(item["createdAt"]) < parse_z(item["expiresAt"])
    assert len({item["id"] for item in sessions}) == 3
    assert {PHONE, LAPTOP} <= {item["userAgent"] for item in sessions}


async def test_list_sessions_marks_only_the_callers_session_current(
    client: httpx.AsyncClient, account: Account
) -> None:
    phone = await sign_in(client, account, PHONE)
    await sign_in(client, account, LAPTOP)

    sessions = await sessions_of(client, phone)

    current = [item for item in sessions if item["current"]]
    assert len(current) == 1
    assert current[0]["userAgent"] == PHONE


async def test_list_sessions_expires_after_the_refresh_lifetime(
    client: httpx.AsyncClient, account: Account
) -> None:
    [item] = await sessions_of(client, account.token)

    lifetime = parse_z(item["expiresAt"]) - parse_z(item["createdAt"])

    assert round(lifetime.total_seconds()) == 30 * 86400


async def test_list_sessions_shows_only_the_callers_own(
    client: httpx.AsyncClient, account: Account
) -> None:
    stranger = await register(client)
    stranger_session = await current_session_id(client, stranger.token)

    sessions = await sessions_of(client, account.token)

    assert stranger_session not in {item["id"] for item in sessions}
    assert len(sessions) == 1


async def test_list_sessions_leaves_out_logged_out_sessions(
    client: httpx.AsyncClient, account: Account
) -> None:
    phone = await sign_in(client, account, PHONE)
    phone_session = await current_session_id(client, phone)
    await client.post("/api/auth/logout", headers=bearer(phone))

    sessions = await sessions_of(client, account.token)

    assert phone_session not in {item["id"] for item in sessions}
    assert len(sessions) == 1


async def test_list_sessions_without_token_is_auth_required(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/sessions")

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_revoke_own_other_session_returns_message(
    client: httpx.AsyncClient, account: Account
) -> None:
    phone = await sign_in(client, account, PHONE)
    phone_session = await current_session_id(client, phone)

    response = await client.delete(f"/api/auth/sessions/{phone_session}", headers=account.headers)

    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    assert set(response.json()["data"]) == {"message"}


async def test_revoked_session_token_is_auth_required(
    client: httpx.AsyncClient, account: Account
) -> None:
    phone = await sign_in(client, account, PHONE)
    phone_session = await current_session_id(client, phone)

    await client.delete(f"/api/auth/sessions/{phone_session}", headers=account.headers)

    assert_error(await client.get("/api/users/me", headers=bearer(phone)), 401, "AUTH_REQUIRED")
    assert (await client.get("/api/users/me", headers=account.headers)).status_code == 200


async def test_revoked_session_refresh_token_is_invalid_token(
    client: httpx.AsyncClient, account: Account
) -> None:
    laptop = await client.post(
        "/api/auth/login", json={"email": account.email, "password": account.password}
    )
    laptop_tokens = laptop.json()["data"]
    laptop_session = await current_session_id(client, laptop_tokens["token"])

    await client.delete(f"/api/auth/sessions/{laptop_session}", headers=account.headers)

    response = await client.post(
        "/api/auth/refresh", json={"refreshToken": laptop_tokens["refreshToken"]}
    )
    assert_error(response, 401, "INVALID_TOKEN")


async def test_revoked_session_leaves_the_list(client: httpx.AsyncClient, account: Account) -> None:
    phone = await sign_in(client, account, PHONE)
    phone_session = await current_session_id(client, phone)

    await client.delete(f"/api/auth/sessions/{phone_session}", headers=account.headers)

    assert [item["id"] for item in await sessions_of(client, account.token)] == [
        await current_session_id(client, account.token)
    ]


async def test_revoke_someone_elses_session_is_session_not_found(
    client: httpx.AsyncClient, account: Account
) -> None:
    stranger = await register(client)
    stranger_session = await current_session_id(client, stranger.token)

    response = await client.delete(
        f"/api/auth/sessions/{stranger_session}", headers=account.headers
    )

    assert_error(response, 404, "SESSION_NOT_FOUND")


async def test_revoke_someone_elses_session_leaves_it_working(
    client: httpx.AsyncClient, account: Account
) -> None:
    stranger = await register(client)
    stranger_session = await current_session_id(client, stranger.token)

    await client.delete(f"/api/auth/sessions/{stranger_session}", headers=account.headers)

    assert (await client.get("/api/users/me", headers=stranger.headers)).status_code == 200
    assert stranger_session in {item["id"] for item in await sessions_of(client, stranger.token)}


async def test_revoke_unknown_session_is_session_not_found(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.delete(
        "/api/auth/sessions/ses_0000000000000000", headers=account.headers
    )

    assert_error(response, 404, "SESSION_NOT_FOUND")


async def test_revoke_already_revoked_session_is_session_not_found(
    client: httpx.AsyncClient, account: Account
) -> None:
    phone = await sign_in(client, account, PHONE)
    phone_session = await current_session_id(client, phone)
    await client.delete(f"/api/auth/sessions/{phone_session}", headers=account.headers)

    response = await client.delete(f"/api/auth/sessions/{phone_session}", headers=account.headers)

    assert_error(response, 404, "SESSION_NOT_FOUND")


async def test_revoke_session_without_token_is_auth_required(
    client: httpx.AsyncClient, account: Account
) -> None:
    own_session = await current_session_id(client, account.token)

    response = await client.delete(f"/api/auth/sessions/{own_session}")

    assert_error(response, 401, "AUTH_REQUIRED")
    assert (await client.get("/api/users/me", headers=account.headers)).status_code == 200
