"""Create, read, update and delete a pattern (contract Part A), who may do which, and
who may see a private pattern."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import ADMIN_EMAIL, Account, assert_error, register_admin
from tests.machines.helpers import instrument_body
from tests.patterns.helpers import (
    PATTERN_OVERRIDES,
    create_pattern,
    pattern_body,
    pattern_count,
    pattern_row,
    salsa_configuration,
)

APP_URL = "http://localhost:3009"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

CREATED_KEYS = {
    "id",
    "title",
    "description",
    "flavor",
    "bpm",
    "keyNote",
    "isPublic",
    "shareUrl",
    "createdAt",
}
PATTERN_KEYS = {
    "id",
    "title",
    "description",
    "flavor",
    "bpm",
    "keyNote",
    "isPublic",
    "configuration",
    "thumbnail",
    "author",
    "stats",
    "createdAt",
    "updatedAt",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, "ADMIN_EMAILS": ADMIN_EMAIL}


@pytest.fixture
async def public(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=True)


@pytest.fixture
async def private(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=False)


async def fetch(
    client: httpx.AsyncClient, pattern_id: str, account: Account | None = None
) -> httpx.Response:
    return await client.get(
        f"/api/patterns/{pattern_id}", headers=account.headers if account else {}
    )


async def fetch_data(
    client: httpx.AsyncClient, pattern_id: str, account: Account | None = None
) -> dict[str, Any]:
    response = await fetch(client, pattern_id, account)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


# --- create ---------------------------------------------------------------------------------


async def test_create_returns_201_with_the_created_shape(
    client: httpx.AsyncClient, owner: Account
) -> None:
    body = pattern_body(title="Son montuno", description="Practice", bpm=190, keyNote=7)

    response = await client.post("/api/patterns", json=body, headers=owner.headers)

    assert response.status_code == 201, response.text
    payload = response.json()
    assert payload["success"] is True
    data = payload["data"]
    assert set(data) == CREATED_KEYS
    assert data["id"].startswith("pat_")
    assert data == {
        "id": data["id"],
        "title": "Son montuno",
        "description": "Practice",
        "flavor": "Salsa",
        "bpm": 190,
        "keyNote": 7,
        "isPublic": True,
        "shareUrl": f"{APP_URL}/patterns/{data['id']}",
        "createdAt": data["createdAt"],
    }
    assert ISO_Z.match(data["createdAt"])


async def test_create_private_pattern_has_no_share_url(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.post(
        "/api/patterns", json=pattern_body(isPublic=False), headers=owner.headers
    )

    assert response.status_code == 201, response.text
    assert response.json()["data"]["isPublic"] is False
    assert response.json()["data"]["shareUrl"] is None


async def test_create_stores_the_pattern_for_its_author(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    created = await create_pattern(client, owner, title="Stored", bpm=100, keyNote=3)

    row = await pattern_row(db, created["id"])
    assert row["user_id"] == owner.id
    assert (row["title"], row["bpm"], row["key_note"], row["flavor"]) == ("Stored", 100, 3, "Salsa")
    assert row["configuration"] == salsa_configuration()
    assert row["deleted_at"] is None
    assert (row["plays_count"], row["likes_count"], row["comments_count"]) == (0, 0, 0)


async def test_create_without_token_is_auth_required(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await client.post("/api/patterns", json=pattern_body())

    assert_error(response, 401, "AUTH_REQUIRED")
    assert await pattern_count(db) == 0


async def test_create_with_bad_token_is_auth_required(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await client.post(
        "/api/patterns", json=pattern_body(), headers={"Authorization": "Bearer not-a-jwt"}
    )

    assert_error(response, 401, "AUTH_REQUIRED")
    assert await pattern_count(db) == 0


async def test_create_records_the_machine_version_it_was_validated_against(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    machine = (await client.get("/api/machines/salsa")).json()["data"]
    created = await create_pattern(client, owner)

    data = await fetch_data(client, created["id"], owner)

    assert data["machineId"] == "salsa"
    assert data["machineVersion"] == machine["version"]
    row = await pattern_row(db, created["id"])
    assert (row["machine_id"], row["machine_version"]) == ("salsa", data["machineVersion"])


async def test_a_pattern_keeps_its_machine_version_when_the_machine_changes(
    client: httpx.AsyncClient, owner: Account
) -> None:
    before = await create_pattern(client, owner)
    old_version = (await fetch_data(client, before["id"], owner))["machineVersion"]
    admin = await register_admin(client)
    response = await client.post(
        "/api/machines/salsa/instruments", json=instrument_body("conga2"), headers=admin.headers
    )
    assert response.status_code == 201, response.text

    configuration = salsa_configuration()
    configuration["instruments"].append(
        {"id": "conga2", "enabled": True, "activeProgram": 0, "volume": 0.5, "pitchOffset": 0}
    )
    after = await create_pattern(client, owner, configuration=configuration)

    assert (await fetch_data(client, before["id"], owner))["machineVersion"] == old_version
    assert (await fetch_data(client, after["id"], owner))["machineVersion"] == old_version + 1


# --- read -----------------------------------------------------------------------------------


async def test_get_returns_the_full_pattern(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    response = await fetch(client, public["id"], owner)

    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    data = response.json()["data"]
    assert set(data) >= PATTERN_KEYS
    assert {key: data[key] for key in CREATED_KEYS - {"shareUrl"}} == {
        key: public[key] for key in CREATED_KEYS - {"shareUrl"}
    }
    assert data["configuration"] == salsa_configuration()
    assert data["thumbnail"] is None
    assert data["author"] == {"id": owner.id, "displayName": "Owner", "avatar": None}
    assert {key: data["stats"][key] for key in ("plays", "likes", "comments")} == {
        "plays": 0,
        "likes": 0,
        "comments": 0,
    }
    assert data["stats"]["isLikedByCurrentUser"] is False
    assert ISO_Z.match(data["updatedAt"])
    assert "email" not in data["author"]


async def test_get_public_pattern_anonymously(
    client: httpx.AsyncClient, public: dict[str, Any]
) -> None:
    data = await fetch_data(client, public["id"])

    assert data["id"] == public["id"]
    assert data["configuration"] == salsa_configuration()
    assert data["stats"]["isLikedByCurrentUser"] is False


async def test_get_public_pattern_as_another_user(
    client: httpx.AsyncClient, other: Account, public: dict[str, Any]
) -> None:
    data = await fetch_data(client, public["id"], other)

    assert data["id"] == public["id"]


async def test_get_shows_is_liked_by_current_user(
    client: httpx.AsyncClient, other: Account, public: dict[str, Any]
) -> None:
    liked = await client.post(f"/api/patterns/{public['id']}/like", headers=other.headers)
    assert liked.status_code == 200, liked.text

    data = await fetch_data(client, public["id"], other)

    assert data["stats"]["isLikedByCurrentUser"] is True
    assert data["stats"]["likes"] == 1


async def test_get_unknown_pattern_is_not_found(client: httpx.AsyncClient, owner: Account) -> None:
    response = await fetch(client, "pat_doesnotexist", owner)

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_owner_sees_own_private_pattern(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    data = await fetch_data(client, private["id"], owner)

    assert data["id"] == private["id"]
    assert data["isPublic"] is False


async def test_private_pattern_is_not_found_for_another_user(
    client: httpx.AsyncClient, other: Account, private: dict[str, Any]
) -> None:
    response = await fetch(client, private["id"], other)

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_private_pattern_is_not_found_anonymously(
    client: httpx.AsyncClient, private: dict[str, Any]
) -> None:
    response = await fetch(client, private["id"])

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_pattern_made_private_is_no_longer_visible_to_others(
    client: httpx.AsyncClient, owner: Account, other: Account, public: dict[str, Any]
) -> None:
    await fetch_data(client, public["id"])  # an anonymous read caches the public view
    response = await client.put(
        f"/api/patterns/{public['id']}", json={"isPublic": False}, headers=owner.headers
    )
    assert response.status_code == 200, response.text

    assert_error(await fetch(client, public["id"]), 404, "PATTERN_NOT_FOUND")
    assert_error(await fetch(client, public["id"], other), 404, "PATTERN_NOT_FOUND")
    assert (await fetch_data(client, public["id"], owner))["shareUrl"] is None


# --- update ---------------------------------------------------------------------------------


async def test_update_returns_id_title_and_updated_at(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    response = await client.put(
        f"/api/patterns/{public['id']}", json={"title": "Renamed"}, headers=owner.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    data = response.json()["data"]
    assert {"id", "title", "updatedAt"} <= set(data)
    assert (data["id"], data["title"]) == (public["id"], "Renamed")
    assert ISO_Z.match(data["updatedAt"])
    assert data["updatedAt"] >= public["createdAt"]


async def test_update_of_one_field_keeps_the_others(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    before = await fetch_data(client, public["id"], owner)

    response = await client.put(
        f"/api/patterns/{public['id']}", json={"bpm": 200}, headers=owner.headers
    )

    assert response.status_code == 200, response.text
    after = await fetch_data(client, public["id"], owner)
    assert after["bpm"] == 200
    for key in ("title", "description", "flavor", "keyNote", "isPublic", "configuration"):
        assert after[key] == before[key], key
    assert after["createdAt"] == before["createdAt"]


async def test_update_of_every_field_is_stored(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    configuration = {
        "instruments": [
            {"id": "bongos", "enabled": True, "activeProgram": 0, "volume": 0.25, "pitchOffset": -3}
        ]
    }
    changes = {
        "title": "Everything new",
        "description": "New words",
        "bpm": 95,
        "keyNote": 0,
        "isPublic": False,
        "configuration": configuration,
    }

    response = await client.put(
        f"/api/patterns/{public['id']}", json=changes, headers=owner.headers
    )

    assert response.status_code == 200, response.text
    after = await fetch_data(client, public["id"], owner)
    assert {key: after[key] for key in changes} == changes
    row = await pattern_row(db, public["id"])
    assert (row["title"], row["bpm"], row["key_note"], row["is_public"]) == (
        "Everything new",
        95,
        0,
        False,
    )
    assert row["configuration"] == configuration


async def test_update_to_another_flavor_with_its_configuration(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    configuration = {
        "instruments": [
            {"id": "tambora", "enabled": True, "activeProgram": 0, "volume": 1.0, "pitchOffset": 0}
        ]
    }

    response = await client.put(
        f"/api/patterns/{public['id']}",
        json={"flavor": "Merengue", "configuration": configuration},
        headers=owner.headers,
    )

    assert response.status_code == 200, response.text
    after = await fetch_data(client, public["id"], owner)
    assert (after["flavor"], after["configuration"]) == ("Merengue", configuration)
    assert after["machineId"] == "merengue"


async def test_update_with_empty_body_changes_nothing(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    before = await fetch_data(client, public["id"], owner)

    response = await client.put(f"/api/patterns/{public['id']}", json={}, headers=owner.headers)

    assert response.status_code == 200, response.text
    after = await fetch_data(client, public["id"], owner)
    for key in ("title", "description", "flavor", "bpm", "keyNote", "isPublic", "configuration"):
        assert after[key] == before[key], key


async def test_update_by_another_user_of_a_public_pattern_is_forbidden(
    client: httpx.AsyncClient, other: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    before = await pattern_row(db, public["id"])

    response = await client.put(
        f"/api/patterns/{public['id']}", json={"title": "Hijacked"}, headers=other.headers
    )

    assert_error(response, 403, "UNAUTHORIZED")
    assert await pattern_row(db, public["id"]) == before


async def test_update_by_another_user_of_a_private_pattern_is_not_found(
    client: httpx.AsyncClient, other: Account, private: dict[str, Any], db: AsyncSession
) -> None:
    before = await pattern_row(db, private["id"])

    response = await client.put(
        f"/api/patterns/{private['id']}", json={"title": "Hijacked"}, headers=other.headers
    )

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert await pattern_row(db, private["id"]) == before


async def test_update_without_token_is_auth_required(
    client: httpx.AsyncClient, public: dict[str, Any], db: AsyncSession
) -> None:
    before = await pattern_row(db, public["id"])

    response = await client.put(f"/api/patterns/{public['id']}", json={"title": "Anonymous"})

    assert_error(response, 401, "AUTH_REQUIRED")
    assert await pattern_row(db, public["id"]) == before


async def test_update_of_unknown_pattern_is_not_found(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.put(
        "/api/patterns/pat_doesnotexist", json={"title": "Nobody"}, headers=owner.headers
    )

    assert_error(response, 404, "PATTERN_NOT_FOUND")


# --- delete ---------------------------------------------------------------------------------


async def test_delete_returns_a_message(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    response = await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert set(body["data"]) == {"message"}
    assert isinstance(body["data"]["message"], str) and body["data"]["message"]


async def test_deleted_pattern_is_not_found_afterwards(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    await fetch_data(client, public["id"])  # an anonymous read caches the public view
    response = await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)
    assert response.status_code == 200, response.text

    assert_error(await fetch(client, public["id"], owner), 404, "PATTERN_NOT_FOUND")
    assert_error(await fetch(client, public["id"]), 404, "PATTERN_NOT_FOUND")


async def test_delete_is_soft_and_keeps_the_row(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    row = await pattern_row(db, public["id"])
    assert row["deleted_at"] is not None


async def test_deleting_twice_is_not_found(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    response = await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_update_of_a_deleted_pattern_is_not_found(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    response = await client.put(
        f"/api/patterns/{public['id']}", json={"title": "Zombie"}, headers=owner.headers
    )

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_delete_by_another_user_of_a_public_pattern_is_forbidden(
    client: httpx.AsyncClient, other: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.delete(f"/api/patterns/{public['id']}", headers=other.headers)

    assert_error(response, 403, "UNAUTHORIZED")
    assert (await pattern_row(db, public["id"]))["deleted_at"] is None


async def test_delete_by_another_user_of_a_private_pattern_is_not_found(
    client: httpx.AsyncClient, other: Account, private: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.delete(f"/api/patterns/{private['id']}", headers=other.headers)

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert (await pattern_row(db, private["id"]))["deleted_at"] is None


async def test_delete_without_token_is_auth_required(
    client: httpx.AsyncClient, public: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.delete(f"/api/patterns/{public['id']}")

    assert_error(response, 401, "AUTH_REQUIRED")
    assert (await pattern_row(db, public["id"]))["deleted_at"] is None
