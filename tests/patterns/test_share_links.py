"""Sharing: a public pattern's link on the front end, and unlisted read-only links
that open a private pattern without an account (create, list, revoke, open)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.patterns.models import Pattern, ShareLink
from beatmachine.patterns.sharing import MAX_ACTIVE_LINKS
from tests.factories import Account, assert_error
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern, salsa_configuration

APP_URL = "https://beats.example.org"

FULL_PATTERN_KEYS = {
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
    "originalId",
    "machineId",
    "machineVersion",
    "version",
    "shareUrl",
    "createdAt",
    "updatedAt",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, "APP_URL": APP_URL}


@pytest.fixture
async def private(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(
        client, owner, title="Secret Tumbao", description="Not for everyone", isPublic=False
    )


@pytest.fixture
async def public(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=True)


async def make_link(client: httpx.AsyncClient, account: Account, pattern_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/patterns/{pattern_id}/share-links", headers=account.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture
async def link(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> dict[str, Any]:
    return await make_link(client, owner, private["id"])


async def list_links(
    client: httpx.AsyncClient, account: Account, pattern_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/patterns/{pattern_id}/share-links", headers=account.headers)
    assert response.status_code == 200, response.text
    links: list[dict[str, Any]] = response.json()["data"]["links"]
    return links


async def link_rows(db: AsyncSession, pattern_id: str) -> tuple[int, int]:
    """(all, active) share link rows of a pattern."""
    row = (
        await db.execute(
            select(func.count(), func.count().filter(ShareLink.revoked_at.is_(None))).where(
                ShareLink.pattern_id == pattern_id
            )
        )
    ).one()
    await db.commit()
    return int(row[0]), int(row[1])


# --- the public link ----------------------------------------------------------------------


async def test_public_pattern_share_url_is_its_front_end_page(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    response = await client.get(f"/api/patterns/{public['id']}")

    assert response.status_code == 200, response.text
    assert public["shareUrl"] == f"{APP_URL}/patterns/{public['id']}"
    assert response.json()["data"]["shareUrl"] == f"{APP_URL}/patterns/{public['id']}"


async def test_private_pattern_has_no_public_share_url(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    response = await client.get(f"/api/patterns/{private['id']}", headers=owner.headers)

    assert private["shareUrl"] is None
    assert response.json()["data"]["shareUrl"] is None


# --- creating and opening unlisted links --------------------------------------------------


async def test_create_share_link_for_a_private_pattern(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        f"/api/patterns/{private['id']}/share-links", headers=owner.headers
    )

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert set(data) == {"id", "url", "token", "createdAt"}
    assert data["id"].startswith("shl_")
    assert len(data["token"]) >= 32
    assert data["url"] == f"{APP_URL}/shared/{data['token']}"
    assert data["createdAt"].endswith("Z")
    assert await link_rows(db, private["id"]) == (1, 1)


async def test_each_share_link_has_its_own_token(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    first = await make_link(client, owner, private["id"])
    second = await make_link(client, owner, private["id"])

    assert first["id"] != second["id"]
    assert first["token"] != second["token"]


async def test_share_link_opens_the_private_pattern_without_an_account(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], link: dict[str, Any]
) -> None:
    owner_view = await client.get(f"/api/patterns/{private['id']}", headers=owner.headers)

    response = await client.get(f"/api/shared/{link['token']}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == FULL_PATTERN_KEYS
    assert data == owner_view.json()["data"]
    assert data["id"] == private["id"]
    assert data["title"] == "Secret Tumbao"
    assert data["isPublic"] is False
    assert data["configuration"] == salsa_configuration()
    assert data["author"] == {"id": owner.id, "displayName": "Owner", "avatar": None}
    assert data["stats"]["isLikedByCurrentUser"] is False
    assert data["shareUrl"] is None


async def test_shared_view_is_never_cached_or_indexed(
    client: httpx.AsyncClient, link: dict[str, Any]
) -> None:
    response = await client.get(f"/api/shared/{link['token']}")

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["x-robots-tag"] == "noindex"


async def test_share_link_shows_the_pattern_as_it_is_now(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], link: dict[str, Any]
) -> None:
    await client.put(f"/api/patterns/{private['id']}", json={"bpm": 222}, headers=owner.headers)

    response = await client.get(f"/api/shared/{link['token']}")

    assert response.status_code == 200, response.text
    assert response.json()["data"]["bpm"] == 222
    assert response.json()["data"]["version"] == 2


async def test_a_public_pattern_can_have_a_share_link_too(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    created = await make_link(client, owner, public["id"])

    response = await client.get(f"/api/shared/{created['token']}")

    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == public["id"]
    assert response.json()["data"]["shareUrl"] == f"{APP_URL}/patterns/{public['id']}"


async def test_an_unknown_token_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/shared/not-a-real-token-0123456789abcdef")

    assert_error(response, 404, "SHARE_LINK_NOT_FOUND")


async def test_share_link_of_a_deleted_pattern_is_not_found(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], link: dict[str, Any]
) -> None:
    deleted = await client.delete(f"/api/patterns/{private['id']}", headers=owner.headers)
    assert deleted.status_code == 200, deleted.text

    response = await client.get(f"/api/shared/{link['token']}")

    assert_error(response, 404, "SHARE_LINK_NOT_FOUND")


async def test_share_link_works_again_when_the_pattern_is_restored(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], link: dict[str, Any]
) -> None:
    await client.delete(f"/api/patterns/{private['id']}", headers=owner.headers)
    restored = await client.post(f"/api/patterns/{private['id']}/restore", headers=owner.headers)
    assert restored.status_code == 200, restored.text

    response = await client.get(f"/api/shared/{link['token']}")

    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == private["id"]


async def test_share_link_of_an_unknown_pattern_is_not_found(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.post(
        "/api/patterns/pat_doesnotexist0000/share-links", headers=owner.headers
    )

    assert_error(response, 404, "PATTERN_NOT_FOUND")


# --- listing ------------------------------------------------------------------------------


async def test_list_share_links_shows_the_active_links_newest_first(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    first = await make_link(client, owner, private["id"])
    second = await make_link(client, owner, private["id"])

    links = await list_links(client, owner, private["id"])

    assert links == [second, first]


async def test_list_share_links_of_a_pattern_without_links_is_empty(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    assert await list_links(client, owner, private["id"]) == []


async def test_links_of_one_pattern_are_not_listed_under_another(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], public: dict[str, Any]
) -> None:
    await make_link(client, owner, private["id"])

    assert await list_links(client, owner, public["id"]) == []


async def test_too_many_links_revoke_the_oldest(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], db: AsyncSession
) -> None:
    made = [await make_link(client, owner, private["id"]) for _ in range(MAX_ACTIVE_LINKS + 1)]

    links = await list_links(client, owner, private["id"])

    assert len(links) == MAX_ACTIVE_LINKS
    assert made[0]["id"] not in {item["id"] for item in links}
    assert_error(await client.get(f"/api/shared/{made[0]['token']}"), 404, "SHARE_LINK_NOT_FOUND")
    assert (await client.get(f"/api/shared/{made[1]['token']}")).status_code == 200
    assert await link_rows(db, private["id"]) == (MAX_ACTIVE_LINKS + 1, MAX_ACTIVE_LINKS)


# --- revoking -----------------------------------------------------------------------------


async def test_revoke_share_link(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], link: dict[str, Any]
) -> None:
    response = await client.delete(
        f"/api/patterns/{private['id']}/share-links/{link['id']}", headers=owner.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    assert isinstance(response.json()["data"]["message"], str)


async def test_a_revoked_link_no_longer_opens_the_pattern(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], link: dict[str, Any]
) -> None:
    await client.delete(
        f"/api/patterns/{private['id']}/share-links/{link['id']}", headers=owner.headers
    )

    response = await client.get(f"/api/shared/{link['token']}")

    assert_error(response, 404, "SHARE_LINK_NOT_FOUND")


async def test_a_revoked_link_is_no_longer_listed(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], link: dict[str, Any]
) -> None:
    other = await make_link(client, owner, private["id"])
    await client.delete(
        f"/api/patterns/{private['id']}/share-links/{link['id']}", headers=owner.headers
    )

    assert await list_links(client, owner, private["id"]) == [other]


async def test_revoking_a_link_twice_is_not_found(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], link: dict[str, Any]
) -> None:
    path = f"/api/patterns/{private['id']}/share-links/{link['id']}"
    await client.delete(path, headers=owner.headers)

    response = await client.delete(path, headers=owner.headers)

    assert_error(response, 404, "SHARE_LINK_NOT_FOUND")


async def test_revoking_an_unknown_link_is_not_found(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    response = await client.delete(
        f"/api/patterns/{private['id']}/share-links/shl_doesnotexist0000", headers=owner.headers
    )

    assert_error(response, 404, "SHARE_LINK_NOT_FOUND")


async def test_a_link_cannot_be_revoked_through_another_pattern(
    client: httpx.AsyncClient,
    owner: Account,
    private: dict[str, Any],
    public: dict[str, Any],
    link: dict[str, Any],
    db: AsyncSession,
) -> None:
    response = await client.delete(
        f"/api/patterns/{public['id']}/share-links/{link['id']}", headers=owner.headers
    )

    assert_error(response, 404, "SHARE_LINK_NOT_FOUND")
    assert await link_rows(db, private["id"]) == (1, 1)


# --- nobody else manages the links --------------------------------------------------------


async def test_stranger_cannot_create_a_link_for_a_private_pattern(
    client: httpx.AsyncClient, stranger: Account, private: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        f"/api/patterns/{private['id']}/share-links", headers=stranger.headers
    )

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert await link_rows(db, private["id"]) == (0, 0)


async def test_stranger_cannot_create_a_link_for_a_public_pattern(
    client: httpx.AsyncClient, stranger: Account, public: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        f"/api/patterns/{public['id']}/share-links", headers=stranger.headers
    )

    assert_error(response, 403, "UNAUTHORIZED")
    assert await link_rows(db, public["id"]) == (0, 0)


async def test_stranger_cannot_list_the_links_of_a_private_pattern(
    client: httpx.AsyncClient, stranger: Account, private: dict[str, Any], link: dict[str, Any]
) -> None:
    response = await client.get(
        f"/api/patterns/{private['id']}/share-links", headers=stranger.headers
    )

    error = assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert link["token"] not in response.text
    assert "details" not in error


async def test_stranger_cannot_list_the_links_of_a_public_pattern(
    client: httpx.AsyncClient, owner: Account, stranger: Account, public: dict[str, Any]
) -> None:
    created = await make_link(client, owner, public["id"])

    response = await client.get(
        f"/api/patterns/{public['id']}/share-links", headers=stranger.headers
    )

    assert_error(response, 403, "UNAUTHORIZED")
    assert created["token"] not in response.text


async def test_stranger_cannot_revoke_a_link_of_a_private_pattern(
    client: httpx.AsyncClient,
    stranger: Account,
    private: dict[str, Any],
    link: dict[str, Any],
    db: AsyncSession,
) -> None:
    response = await client.delete(
        f"/api/patterns/{private['id']}/share-links/{link['id']}", headers=stranger.headers
    )

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert await link_rows(db, private["id"]) == (1, 1)
    assert (await client.get(f"/api/shared/{link['token']}")).status_code == 200


async def test_stranger_cannot_revoke_a_link_of_a_public_pattern(
    client: httpx.AsyncClient,
    owner: Account,
    stranger: Account,
    public: dict[str, Any],
    db: AsyncSession,
) -> None:
    created = await make_link(client, owner, public["id"])

    response = await client.delete(
        f"/api/patterns/{public['id']}/share-links/{created['id']}", headers=stranger.headers
    )

    assert_error(response, 403, "UNAUTHORIZED")
    assert await link_rows(db, public["id"]) == (1, 1)


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("POST", "/share-links"), ("GET", "/share-links"), ("DELETE", "/share-links/{link}")],
)
async def test_managing_links_needs_an_account(
    client: httpx.AsyncClient,
    private: dict[str, Any],
    link: dict[str, Any],
    db: AsyncSession,
    method: str,
    suffix: str,
) -> None:
    path = f"/api/patterns/{private['id']}" + suffix.format(link=link["id"])

    response = await client.request(method, path)

    assert_error(response, 401, "AUTH_REQUIRED")
    assert await link_rows(db, private["id"]) == (1, 1)


# --- read-only ----------------------------------------------------------------------------


async def test_the_shared_view_gives_no_way_to_write(
    client: httpx.AsyncClient, private: dict[str, Any], link: dict[str, Any], db: AsyncSession
) -> None:
    path = f"/api/patterns/{private['id']}"
    as_token = {"Authorization": f"Bearer {link['token']}"}

    no_token = await client.put(path, json={"title": "Taken over"})
    share_token = await client.put(path, json={"title": "Taken over"}, headers=as_token)
    delete = await client.delete(path, headers=as_token)

    assert_error(no_token, 401, "AUTH_REQUIRED")
    assert_error(share_token, 401, "AUTH_REQUIRED")
    assert_error(delete, 401, "AUTH_REQUIRED")
    row = (
        await db.execute(
            select(Pattern.title, Pattern.deleted_at).where(Pattern.id == private["id"])
        )
    ).one()
    await db.commit()
    assert (row[0], row[1]) == ("Secret Tumbao", None)


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
async def test_the_shared_address_only_reads(
    client: httpx.AsyncClient, link: dict[str, Any], method: str
) -> None:
    response = await client.request(method, f"/api/shared/{link['token']}", json={"bpm": 100})

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
