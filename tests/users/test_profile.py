"""GET and PUT /api/users/me: the owner's profile."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import assert_error, register, validation_fields
from tests.users.helpers import ISO_Z, data_url, png_bytes, user_row

ME_KEYS = {
    "id",
    "email",
    "displayName",
    "avatar",
    "bio",
    "preferences",
    "stats",
    "createdAt",
    "updatedAt",
}
# Part B additions to the profile, documented in the OpenAPI schema.
ME_EXTRA_KEYS = {"emailVerified", "isAdmin", "deletionScheduledAt", "avatarFetch"}
PREFERENCE_KEYS = {
    "defaultBpm",
    "defaultKey",
    "defaultFlavor",
    "useGlassUI",
    "autoPlay",
    "showBeatNumbers",
    "defaultVolume",
    "theme",
    "language",
    "notifyLikes",
    "notifyComments",
    "notifyFollows",
    "notifyNewsletter",
}
AVATAR = data_url("image/png", png_bytes())
# Where the default size of a stored avatar is served from (the local storage).
STORED_AVATAR = re.compile(
    r"^http://127\.0\.0\.1:8000/media/avatars/usr_\w+/[0-9a-f]{16}/256\.webp$"
)


async def test_me_returns_the_contract_shape(client: httpx.AsyncClient) -> None:
    account = await register(client, email="Shape.Dancer@Example.com", display_name="Shape")

    response = await client.get("/api/users/me", headers=account.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == ME_KEYS | ME_EXTRA_KEYS
    assert data["id"] == account.id and data["id"].startswith("usr_")
    assert data["email"] == "shape.dancer@example.com"
    assert data["displayName"] == "Shape"
    assert data["avatar"] is None
    assert data["bio"] is None
    assert set(data["preferences"]) == PREFERENCE_KEYS
    assert data["stats"] == {
        "patternsCreated": 0,
        "patternsShared": 0,
        "followers": 0,
        "following": 0,
    }
    assert ISO_Z.match(data["createdAt"]), data["createdAt"]
    assert ISO_Z.match(data["updatedAt"]), data["updatedAt"]
    assert data["isAdmin"] is False


async def test_me_preferences_start_at_the_defaults(client: httpx.AsyncClient) -> None:
    account = await register(client)

    response = await client.get("/api/users/me", headers=account.headers)

    assert response.status_code == 200
    assert response.json()["data"]["preferences"] == {
        "defaultBpm": 120,
        "defaultKey": 0,
        "defaultFlavor": "Salsa",
        "useGlassUI": True,
        "autoPlay": False,
        "showBeatNumbers": True,
        "defaultVolume": 0.8,
        "theme": "auto",
        "language": "en",
        "notifyLikes": True,
        "notifyComments": True,
        "notifyFollows": True,
        "notifyNewsletter": False,
    }


async def test_me_without_token_is_auth_required(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/me")

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_me_with_a_forged_token_is_auth_required(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/me", headers={"Authorization": "Bearer not.a.token"})

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_update_profile_returns_the_updated_fields(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client, display_name="Before")

    response = await client.put(
        "/api/users/me",
        headers=account.headers,
        json={"displayName": "After", "bio": "Dancing since 2010.", "avatar": AVATAR},
    )

    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"id", "displayName", "bio", "avatar", "avatarFetch", "updatedAt"}
    assert data["id"] == account.id
    assert data["displayName"] == "After"
    assert data["bio"] == "Dancing since 2010."
    assert STORED_AVATAR.match(data["avatar"]), data["avatar"]
    assert data["avatarFetch"] is None
    assert ISO_Z.match(data["updatedAt"]), data["updatedAt"]
    row = await user_row(db, account.id)
    assert (row["display_name"], row["bio"], row["avatar"]) == (
        "After",
        "Dancing since 2010.",
        data["avatar"],
    )


async def test_update_profile_is_visible_in_me(client: httpx.AsyncClient) -> None:
    account = await register(client)
    updated = await client.put(
        "/api/users/me", headers=account.headers, json={"bio": "Casino rueda"}
    )

    me = (await client.get("/api/users/me", headers=account.headers)).json()["data"]

    assert me["bio"] == "Casino rueda"
    assert me["updatedAt"] == updated.json()["data"]["updatedAt"]


async def test_update_profile_keeps_fields_not_sent(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client, display_name="Keeper")
    first = await client.put(
        "/api/users/me", headers=account.headers, json={"bio": "Old bio", "avatar": AVATAR}
    )
    avatar = first.json()["data"]["avatar"]

    response = await client.put(
        "/api/users/me", headers=account.headers, json={"displayName": "Renamed"}
    )

    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["displayName"], data["bio"], data["avatar"]) == ("Renamed", "Old bio", avatar)
    row = await user_row(db, account.id)
    assert (row["display_name"], row["bio"], row["avatar"]) == ("Renamed", "Old bio", avatar)


async def test_update_profile_with_empty_body_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client, display_name="Still")

    response = await client.put("/api/users/me", headers=account.headers, json={})

    assert response.status_code == 200
    assert response.json()["data"]["displayName"] == "Still"
    row = await user_row(db, account.id)
    assert (row["display_name"], row["bio"], row["avatar"]) == ("Still", None, None)


async def test_bio_and_avatar_can_be_cleared_with_null(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    await client.put(
        "/api/users/me", headers=account.headers, json={"bio": "Temp", "avatar": AVATAR}
    )

    response = await client.put(
        "/api/users/me", headers=account.headers, json={"bio": None, "avatar": None}
    )

    assert response.status_code == 200
    assert (response.json()["data"]["bio"], response.json()["data"]["avatar"]) == (None, None)
    row = await user_row(db, account.id)
    assert (row["bio"], row["avatar"]) == (None, None)


async def test_script_in_bio_is_stored_without_tags(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await client.put(
        "/api/users/me", headers=account.headers, json={"bio": "<script>alert(1)</script>Hi"}
    )

    assert response.status_code == 200
    assert "<script" not in response.json()["data"]["bio"]
    stored = (await user_row(db, account.id))["bio"]
    assert "<script" not in stored
    assert "Hi" in stored


async def test_script_in_display_name_is_stored_without_tags(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await client.put(
        "/api/users/me",
        headers=account.headers,
        json={"displayName": "<script>alert(1)</script>Hi"},
    )

    assert response.status_code == 200
    assert "<script" not in response.json()["data"]["displayName"]
    stored = (await user_row(db, account.id))["display_name"]
    assert "<script" not in stored
    assert "Hi" in stored


async def test_formatting_tags_are_removed_and_their_text_kept(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await client.put(
        "/api/users/me",
        headers=account.headers,
        json={"bio": '<b>Bold</b> <a href="https://evil.example" onclick="x()">moves</a>'},
    )

    assert response.status_code == 200
    assert response.json()["data"]["bio"] == "Bold moves"
    assert (await user_row(db, account.id))["bio"] == "Bold moves"


def _refused_bodies() -> list[Any]:
    svg = data_url("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"/>')
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("empty_display_name", {"displayName": ""}, "displayName"),
        ("blank_display_name", {"displayName": "   "}, "displayName"),
        ("markup_only_display_name", {"displayName": "<b></b>"}, "displayName"),
        ("display_name_101_chars", {"displayName": "x" * 101}, "displayName"),
        ("null_display_name", {"displayName": None}, "displayName"),
        ("numeric_display_name", {"displayName": 42}, "displayName"),
        ("bio_501_chars", {"bio": "b" * 501}, "bio"),
        ("javascript_url", {"avatar": "javascript:alert(1)"}, "avatar"),
        ("svg_data_url", {"avatar": svg}, "avatar"),
        ("not_base64", {"avatar": "data:image/png;base64,iVBORw0KGgo"}, "avatar"),
        ("garbage_base64", {"avatar": "data:image/png;base64,@@not base64@@"}, "avatar"),
        ("empty_data_url", {"avatar": "data:image/png;base64,"}, "avatar"),
        ("url_over_2048_chars", {"avatar": "https://a.test/" + "x" * 2048}, "avatar"),
        ("ftp_url", {"avatar": "ftp://a.test/me.png"}, "avatar"),
        ("mass_assign_is_admin", {"isAdmin": True}, "isAdmin"),
        ("mass_assign_email", {"email": "other@example.com"}, "email"),
        ("valid_name_with_long_bio", {"displayName": "Fine", "bio": "b" * 501}, "bio"),
    ]
    return [pytest.param(body, field, id=name) for name, body, field in cases]


@pytest.mark.parametrize(("body", "field"), _refused_bodies())
async def test_invalid_profile_update_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, body: dict[str, Any], field: str
) -> None:
    account = await register(client, display_name="Original")
    before = await user_row(db, account.id)

    response = await client.put("/api/users/me", headers=account.headers, json=body)

    assert validation_fields(response) == {field}
    assert await user_row(db, account.id) == before


async def test_malformed_json_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    before = await user_row(db, account.id)

    response = await client.put(
        "/api/users/me",
        headers={**account.headers, "Content-Type": "application/json"},
        content=b'{"displayName": "Half',
    )

    assert validation_fields(response) == {"body"}
    assert await user_row(db, account.id) == before


async def test_json_that_is_not_an_object_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    before = await user_row(db, account.id)

    response = await client.put("/api/users/me", headers=account.headers, json=["displayName"])

    assert_error(response, 422, "VALIDATION_ERROR")
    assert await user_row(db, account.id) == before


async def test_wrong_content_type_is_unsupported_media_type(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    before = await user_row(db, account.id)

    response = await client.put(
        "/api/users/me",
        headers={**account.headers, "Content-Type": "text/plain"},
        content=b'{"displayName": "Sneaky"}',
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await user_row(db, account.id) == before


async def test_update_profile_without_token_is_auth_required(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/users/me", json={"displayName": "Nobody"})

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_ampersand_in_bio_is_stored_as_typed(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await client.put(
        "/api/users/me", headers=account.headers, json={"bio": "Salsa & Bachata, I <3 it"}
    )

    assert response.status_code == 200
    assert response.json()["data"]["bio"] == "Salsa & Bachata, I <3 it"
    assert (await user_row(db, account.id))["bio"] == "Salsa & Bachata, I <3 it"


async def test_escaped_markup_is_not_decoded_into_tags(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await client.put(
        "/api/users/me",
        headers=account.headers,
        json={"bio": "&lt;img src=x onerror=alert(1)&gt;Hi"},
    )

    assert response.status_code == 200
    stored = (await user_row(db, account.id))["bio"]
    assert "<img" not in stored and "<img" not in response.json()["data"]["bio"]
    assert "Hi" in stored


async def test_display_name_of_100_ampersands_is_stored_whole(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await client.put(
        "/api/users/me", headers=account.headers, json={"displayName": "&" * 100}
    )

    assert response.status_code == 200
    assert (await user_row(db, account.id))["display_name"] == "&" * 100


async def test_bio_of_500_angle_brackets_is_stored_whole(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await client.put("/api/users/me", headers=account.headers, json={"bio": "<" * 500})

    assert response.status_code == 200
    assert (await user_row(db, account.id))["bio"] == "<" * 500
