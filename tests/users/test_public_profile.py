"""GET /api/users/{userId}: someone's public profile (optional auth, never an email)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from tests.factories import assert_error, register
from tests.users.helpers import ISO_Z, data_url, png_bytes

PUBLIC_KEYS = {"id", "displayName", "avatar", "bio", "stats", "isFollowing"}
# Part B addition, documented in the OpenAPI schema.
PUBLIC_EXTRA_KEYS = {"createdAt"}


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def assert_no_email(response: httpx.Response, email: str) -> None:
    keys = {key.lower() for key in _keys(response.json())}
    assert not any("email" in key for key in keys), keys
    assert email.lower() not in response.text.lower()


async def test_public_profile_has_the_contract_shape(client: httpx.AsyncClient) -> None:
    owner = await register(client, display_name="Public Dancer")

    response = await client.get(f"/api/users/{owner.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == PUBLIC_KEYS | PUBLIC_EXTRA_KEYS
    assert data["id"] == owner.id
    assert data["displayName"] == "Public Dancer"
    assert data["avatar"] is None
    assert data["bio"] is None
    assert data["stats"] == {"patternsShared": 0, "followers": 0}
    assert data["isFollowing"] is False
    assert ISO_Z.match(data["createdAt"]), data["createdAt"]


async def test_public_profile_never_shows_the_email_to_anonymous_visitors(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)

    response = await client.get(f"/api/users/{owner.id}")

    assert response.status_code == 200
    assert_no_email(response, owner.email)


async def test_public_profile_never_shows_the_email_to_signed_in_viewers(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    viewer = await register(client)

    response = await client.get(f"/api/users/{owner.id}", headers=viewer.headers)

    assert response.status_code == 200
    assert response.json()["data"]["isFollowing"] is False
    assert_no_email(response, owner.email)


async def test_own_public_profile_shows_no_email_either(client: httpx.AsyncClient) -> None:
    owner = await register(client)

    response = await client.get(f"/api/users/{owner.id}", headers=owner.headers)

    assert response.status_code == 200
    assert response.json()["data"]["id"] == owner.id
    assert_no_email(response, owner.email)


async def test_public_profile_shows_the_updated_profile(client: httpx.AsyncClient) -> None:
    owner = await register(client, display_name="Old Name")
    updated = await client.put(
        "/api/users/me",
        headers=owner.headers,
        json={
            "displayName": "New Name",
            "bio": "Son montuno",
            "avatar": data_url("image/png", png_bytes()),
        },
    )
    avatar = updated.json()["data"]["avatar"]

    data = (await client.get(f"/api/users/{owner.id}")).json()["data"]

    assert avatar.endswith("/256.webp")
    assert (data["displayName"], data["bio"], data["avatar"]) == (
        "New Name",
        "Son montuno",
        avatar,
    )


async def test_unknown_user_is_user_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/usr_0000000000000000")

    assert_error(response, 404, "USER_NOT_FOUND")


async def test_malformed_user_id_is_user_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/not-an-id")

    assert_error(response, 404, "USER_NOT_FOUND")


async def test_unknown_user_is_user_not_found_for_signed_in_viewers(
    client: httpx.AsyncClient,
) -> None:
    viewer = await register(client)

    response = await client.get("/api/users/usr_0000000000000000", headers=viewer.headers)

    assert_error(response, 404, "USER_NOT_FOUND")


async def test_bad_token_is_auth_required_although_auth_is_optional(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)

    response = await client.get(
        f"/api/users/{owner.id}", headers={"Authorization": "Bearer garbage.token.here"}
    )

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_logged_out_token_is_auth_required(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    viewer = await register(client)
    logout = await client.post("/api/auth/logout", headers=viewer.headers)
    assert logout.status_code == 200

    response = await client.get(f"/api/users/{owner.id}", headers=viewer.headers)

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_account_awaiting_deletion_is_user_not_found(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    deletion = await client.post(
        "/api/auth/delete-account", headers=owner.headers, json={"password": owner.password}
    )
    assert deletion.status_code == 200, deletion.text

    response = await client.get(f"/api/users/{owner.id}")

    assert_error(response, 404, "USER_NOT_FOUND")
