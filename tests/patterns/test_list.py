"""GET /patterns and GET /patterns/me: pagination, sort orders, filters, the list item
shape, and that private and deleted patterns never show to others."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from beatmachine.core.state import AppState
from beatmachine.patterns import service as patterns_service
from tests.factories import Account, assert_error, register, validation_fields
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern, merengue_configuration

LIST_ITEM_KEYS = {
    "id",
    "title",
    "description",
    "flavor",
    "bpm",
    "keyNote",
    "isPublic",
    "thumbnail",
    "author",
    "stats",
    "createdAt",
    "updatedAt",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, "RATE_LIMIT_ANONYMOUS": 10_000}


async def listing(
    client: httpx.AsyncClient,
    account: Account | None = None,
    path: str = "/api/patterns",
    **params: Any,
) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=account.headers if account else {})
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    data: dict[str, Any] = response.json()["data"]
    assert set(data) == {"patterns", "pagination"}
    return data


def ids(data: dict[str, Any]) -> list[str]:
    return [item["id"] for item in data["patterns"]]


async def play(client: httpx.AsyncClient, pattern_id: str, times: int) -> None:
    for _ in range(times):
        response = await client.post(f"/api/patterns/{pattern_id}/play")
        assert response.status_code == 200, response.text


async def like(client: httpx.AsyncClient, pattern_id: str, accounts: list[Account]) -> None:
    for account in accounts:
        response = await client.post(f"/api/patterns/{pattern_id}/like", headers=account.headers)
        assert response.status_code == 200, response.text


# --- pagination -----------------------------------------------------------------------------


async def test_empty_listing_has_zero_total_and_pages(client: httpx.AsyncClient) -> None:
    data = await listing(client)

    assert data == {"patterns": [], "pagination": {"page": 1, "limit": 20, "total": 0, "pages": 0}}


async def test_pagination_object_is_exact(client: httpx.AsyncClient, owner: Account) -> None:
    for _ in range(3):
        await create_pattern(client, owner)

    data = await listing(client, page=1, limit=2)

    assert data["pagination"] == {"page": 1, "limit": 2, "total": 3, "pages": 2}
    assert len(data["patterns"]) == 2


async def test_second_page_holds_the_rest(client: httpx.AsyncClient, owner: Account) -> None:
    created = [(await create_pattern(client, owner))["id"] for _ in range(3)]

    first = await listing(client, page=1, limit=2)
    second = await listing(client, page=2, limit=2)

    assert second["pagination"] == {"page": 2, "limit": 2, "total": 3, "pages": 2}
    assert sorted(ids(first) + ids(second)) == sorted(created)


async def test_page_past_the_end_is_empty(client: httpx.AsyncClient, owner: Account) -> None:
    await create_pattern(client, owner)

    data = await listing(client, page=5, limit=10)

    assert data == {"patterns": [], "pagination": {"page": 5, "limit": 10, "total": 1, "pages": 1}}


async def test_default_limit_is_20(client: httpx.AsyncClient, owner: Account) -> None:
    for _ in range(21):
        await create_pattern(client, owner)

    data = await listing(client)

    assert len(data["patterns"]) == 20
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 21, "pages": 2}


async def test_limit_100_is_allowed(client: httpx.AsyncClient, owner: Account) -> None:
    await create_pattern(client, owner)

    data = await listing(client, limit=100)

    assert data["pagination"] == {"page": 1, "limit": 100, "total": 1, "pages": 1}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        pytest.param({"limit": 101}, "limit", id="limit-101"),
        pytest.param({"limit": 0}, "limit", id="limit-0"),
        pytest.param({"limit": "ten"}, "limit", id="limit-word"),
        pytest.param({"page": 0}, "page", id="page-0"),
        pytest.param({"page": -1}, "page", id="page-negative"),
        pytest.param({"page": "two"}, "page", id="page-word"),
        pytest.param({"sort": "oldest"}, "sort", id="sort-unknown"),
        pytest.param({"sort": ""}, "sort", id="sort-empty"),
    ],
)
async def test_invalid_query_is_refused(
    client: httpx.AsyncClient, params: dict[str, Any], name: str
) -> None:
    response = await client.get("/api/patterns", params=params)

    assert validation_fields(response) == {f"query.{name}"}


# --- sort orders ----------------------------------------------------------------------------


async def test_default_sort_is_newest_first(client: httpx.AsyncClient, owner: Account) -> None:
    created = [(await create_pattern(client, owner))["id"] for _ in range(3)]

    assert ids(await listing(client)) == list(reversed(created))


async def test_sort_recent_is_newest_first(client: httpx.AsyncClient, owner: Account) -> None:
    created = [(await create_pattern(client, owner))["id"] for _ in range(3)]

    assert ids(await listing(client, sort="recent")) == list(reversed(created))


async def test_sort_popular_is_most_played_first(client: httpx.AsyncClient, owner: Account) -> None:
    once, thrice, never = [(await create_pattern(client, owner))["id"] for _ in range(3)]
    await play(client, once, 1)
    await play(client, thrice, 3)

    data = await listing(client, sort="popular")

    assert ids(data) == [thrice, once, never]
    assert [item["stats"]["plays"] for item in data["patterns"]] == [3, 1, 0]


async def test_sort_liked_is_most_liked_first(
    client: httpx.AsyncClient, owner: Account, other: Account
) -> None:
    third = await register(client, display_name="Third")
    one_like, no_like, two_likes = [(await create_pattern(client, owner))["id"] for _ in range(3)]
    await like(client, two_likes, [other, third])
    await like(client, one_like, [other])
    await play(client, no_like, 5)  # plays do not count for `liked`

    data = await listing(client, sort="liked")

    assert ids(data) == [two_likes, one_like, no_like]
    assert [item["stats"]["likes"] for item in data["patterns"]] == [2, 1, 0]


async def test_sort_applies_across_pages(client: httpx.AsyncClient, owner: Account) -> None:
    created = [(await create_pattern(client, owner))["id"] for _ in range(3)]
    await play(client, created[0], 2)
    await play(client, created[2], 1)

    first = await listing(client, sort="popular", limit=2, page=1)
    second = await listing(client, sort="popular", limit=2, page=2)

    assert ids(first) + ids(second) == [created[0], created[2], created[1]]


# --- filters --------------------------------------------------------------------------------


async def test_flavor_filter(client: httpx.AsyncClient, owner: Account) -> None:
    salsa = await create_pattern(client, owner)
    merengue = await create_pattern(
        client, owner, flavor="Merengue", configuration=merengue_configuration()
    )

    merengue_only = await listing(client, flavor="Merengue")
    salsa_only = await listing(client, flavor="Salsa")

    assert ids(merengue_only) == [merengue["id"]]
    assert merengue_only["pagination"]["total"] == 1
    assert ids(salsa_only) == [salsa["id"]]
    assert salsa_only["pagination"]["total"] == 1


async def test_unknown_flavor_filter_is_empty(client: httpx.AsyncClient, owner: Account) -> None:
    await create_pattern(client, owner)

    data = await listing(client, flavor="Bachata")

    assert data == {"patterns": [], "pagination": {"page": 1, "limit": 20, "total": 0, "pages": 0}}


async def test_user_id_filter(client: httpx.AsyncClient, owner: Account, other: Account) -> None:
    mine = await create_pattern(client, owner)
    theirs = await create_pattern(client, other)

    owner_only = await listing(client, userId=owner.id)
    other_only = await listing(client, userId=other.id)

    assert ids(owner_only) == [mine["id"]]
    assert owner_only["pagination"]["total"] == 1
    assert ids(other_only) == [theirs["id"]]


async def test_flavor_and_user_id_filters_combine(
    client: httpx.AsyncClient, owner: Account, other: Account
) -> None:
    wanted = await create_pattern(
        client, owner, flavor="Merengue", configuration=merengue_configuration()
    )
    await create_pattern(client, owner)
    await create_pattern(client, other, flavor="Merengue", configuration=merengue_configuration())

    data = await listing(client, flavor="Merengue", userId=owner.id)

    assert ids(data) == [wanted["id"]]
    assert data["pagination"]["total"] == 1


# --- item shape -----------------------------------------------------------------------------


async def test_list_item_has_the_pattern_fields_without_configuration(
    client: httpx.AsyncClient, owner: Account
) -> None:
    created = await create_pattern(client, owner, title="Shape", bpm=111, keyNote=4)

    (item,) = (await listing(client))["patterns"]

    assert set(item) >= LIST_ITEM_KEYS
    assert "configuration" not in item
    assert {key: item[key] for key in ("id", "title", "flavor", "bpm", "keyNote", "isPublic")} == {
        "id": created["id"],
        "title": "Shape",
        "flavor": "Salsa",
        "bpm": 111,
        "keyNote": 4,
        "isPublic": True,
    }
    assert item["createdAt"] == created["createdAt"]


async def test_list_item_embeds_its_author(client: httpx.AsyncClient, owner: Account) -> None:
    await create_pattern(client, owner)

    (item,) = (await listing(client))["patterns"]

    assert item["author"] == {"id": owner.id, "displayName": "Owner", "avatar": None}


async def test_list_item_carries_its_stats(
    client: httpx.AsyncClient, owner: Account, other: Account
) -> None:
    created = await create_pattern(client, owner)
    await play(client, created["id"], 2)
    await like(client, created["id"], [other])

    (item,) = (await listing(client))["patterns"]

    assert {key: item["stats"][key] for key in ("plays", "likes", "comments")} == {
        "plays": 2,
        "likes": 1,
        "comments": 0,
    }


# --- what is listed -------------------------------------------------------------------------


async def test_soft_deleted_pattern_is_not_listed(
    client: httpx.AsyncClient, owner: Account
) -> None:
    kept = await create_pattern(client, owner)
    gone = await create_pattern(client, owner)
    assert (await listing(client))["pagination"]["total"] == 2
    response = await client.delete(f"/api/patterns/{gone['id']}", headers=owner.headers)
    assert response.status_code == 200, response.text

    data = await listing(client)

    assert ids(data) == [kept["id"]]
    assert data["pagination"]["total"] == 1


async def test_soft_deleted_pattern_is_not_in_my_patterns(
    client: httpx.AsyncClient, owner: Account
) -> None:
    kept = await create_pattern(client, owner, isPublic=False)
    gone = await create_pattern(client, owner, isPublic=False)
    await client.delete(f"/api/patterns/{gone['id']}", headers=owner.headers)

    data = await listing(client, owner, "/api/patterns/me")

    assert ids(data) == [kept["id"]]
    assert data["pagination"]["total"] == 1


async def test_total_counts_a_new_public_pattern_at_once(
    client: httpx.AsyncClient, owner: Account
) -> None:
    await create_pattern(client, owner)
    assert (await listing(client))["pagination"]["total"] == 1  # the count is now cached

    created = await create_pattern(client, owner)

    data = await listing(client)
    assert data["pagination"]["total"] == 2
    assert ids(data)[0] == created["id"]


async def test_flavor_total_counts_a_new_public_pattern_at_once(
    client: httpx.AsyncClient, owner: Account
) -> None:
    assert (await listing(client, flavor="Merengue"))["pagination"]["total"] == 0

    await create_pattern(client, owner, flavor="Merengue", configuration=merengue_configuration())

    assert (await listing(client, flavor="Merengue"))["pagination"]["total"] == 1


async def test_total_drops_when_a_pattern_is_made_private(
    client: httpx.AsyncClient, owner: Account
) -> None:
    created = await create_pattern(client, owner)
    assert (await listing(client))["pagination"]["total"] == 1

    response = await client.put(
        f"/api/patterns/{created['id']}", json={"isPublic": False}, headers=owner.headers
    )
    assert response.status_code == 200, response.text

    assert await listing(client) == {
        "patterns": [],
        "pagination": {"page": 1, "limit": 20, "total": 0, "pages": 0},
    }


async def make_merengue(client: httpx.AsyncClient, owner: Account, pattern_id: str) -> None:
    response = await client.put(
        f"/api/patterns/{pattern_id}",
        json={"flavor": "Merengue", "configuration": merengue_configuration()},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text


async def test_flavor_totals_follow_a_change_of_flavor_at_once(
    client: httpx.AsyncClient, owner: Account
) -> None:
    created = await create_pattern(client, owner)
    assert (await listing(client, flavor="Salsa"))["pagination"]["total"] == 1
    assert (await listing(client, flavor="Merengue"))["pagination"]["total"] == 0

    await make_merengue(client, owner, created["id"])

    assert (await listing(client, flavor="Salsa"))["pagination"]["total"] == 0
    assert (await listing(client, flavor="Merengue"))["pagination"]["total"] == 1


async def test_flavor_totals_follow_a_restored_version_at_once(
    client: httpx.AsyncClient, owner: Account
) -> None:
    created = await create_pattern(client, owner)
    await make_merengue(client, owner, created["id"])
    assert (await listing(client, flavor="Merengue"))["pagination"]["total"] == 1
    assert (await listing(client, flavor="Salsa"))["pagination"]["total"] == 0

    response = await client.post(
        f"/api/patterns/{created['id']}/versions/1/restore", headers=owner.headers
    )
    assert response.status_code == 200, response.text

    assert (await listing(client, flavor="Merengue"))["pagination"]["total"] == 0
    assert (await listing(client, flavor="Salsa"))["pagination"]["total"] == 1


async def test_plays_and_likes_keep_the_cached_total(
    client: httpx.AsyncClient, owner: Account, state: AppState
) -> None:
    created = await create_pattern(client, owner)
    assert (await listing(client))["pagination"]["total"] == 1  # the count is now cached
    key = patterns_service.count_cache_key(None)
    cached = await state.cache.get(key)
    assert cached == b"1"

    played = await client.post(f"/api/patterns/{created['id']}/play")
    liked = await client.post(f"/api/patterns/{created['id']}/like", headers=owner.headers)
    assert (played.status_code, liked.status_code) == (200, 200), (played.text, liked.text)

    # The hottest write path must not make every listing count the table again.
    assert await state.cache.get(key) == cached


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="default"),
        pytest.param({"sort": "recent"}, id="recent"),
        pytest.param({"sort": "popular"}, id="popular"),
        pytest.param({"sort": "liked"}, id="liked"),
        pytest.param({"flavor": "Salsa"}, id="flavor"),
        pytest.param({"search": "secret"}, id="search"),
        pytest.param({"search": "secret", "flavor": "Salsa", "sort": "popular"}, id="combined"),
    ],
)
async def test_private_pattern_is_never_listed(
    client: httpx.AsyncClient, owner: Account, other: Account, params: dict[str, Any]
) -> None:
    public = await create_pattern(client, owner, title="Open secret")
    await create_pattern(client, owner, title="Hidden secret", isPublic=False)

    anonymous = await listing(client, **params)
    as_other = await listing(client, other, **params)
    as_owner = await listing(client, owner, **params)

    for data in (anonymous, as_other, as_owner):
        assert ids(data) == [public["id"]]
        assert data["pagination"]["total"] == 1


async def test_private_pattern_is_not_listed_by_user_id_even_for_its_owner(
    client: httpx.AsyncClient, owner: Account, other: Account
) -> None:
    public = await create_pattern(client, owner)
    await create_pattern(client, owner, isPublic=False)

    for account in (None, other, owner):
        data = await listing(client, account, userId=owner.id)
        assert ids(data) == [public["id"]]
        assert data["pagination"]["total"] == 1


# --- my patterns ----------------------------------------------------------------------------


async def test_my_patterns_include_private_ones_by_default(
    client: httpx.AsyncClient, owner: Account
) -> None:
    public = await create_pattern(client, owner)
    private = await create_pattern(client, owner, isPublic=False)

    data = await listing(client, owner, "/api/patterns/me")

    assert ids(data) == [private["id"], public["id"]]
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 2, "pages": 1}
    assert [item["isPublic"] for item in data["patterns"]] == [False, True]
    assert all("configuration" not in item for item in data["patterns"])


async def test_my_patterns_include_private_true(client: httpx.AsyncClient, owner: Account) -> None:
    await create_pattern(client, owner)
    private = await create_pattern(client, owner, isPublic=False)

    data = await listing(client, owner, "/api/patterns/me", includePrivate="true")

    assert private["id"] in ids(data)
    assert data["pagination"]["total"] == 2


async def test_my_patterns_include_private_false_hides_them(
    client: httpx.AsyncClient, owner: Account
) -> None:
    public = await create_pattern(client, owner)
    await create_pattern(client, owner, isPublic=False)

    data = await listing(client, owner, "/api/patterns/me", includePrivate="false")

    assert ids(data) == [public["id"]]
    assert data["pagination"]["total"] == 1


async def test_my_patterns_hold_only_my_own(
    client: httpx.AsyncClient, owner: Account, other: Account
) -> None:
    await create_pattern(client, owner)
    await create_pattern(client, owner, isPublic=False)
    theirs = await create_pattern(client, other, isPublic=False)

    data = await listing(client, other, "/api/patterns/me")

    assert ids(data) == [theirs["id"]]
    assert data["pagination"]["total"] == 1


async def test_my_patterns_paginate(client: httpx.AsyncClient, owner: Account) -> None:
    for _ in range(3):
        await create_pattern(client, owner, isPublic=False)

    data = await listing(client, owner, "/api/patterns/me", limit=2, page=2)

    assert len(data["patterns"]) == 1
    assert data["pagination"] == {"page": 2, "limit": 2, "total": 3, "pages": 2}


async def test_my_patterns_without_token_is_auth_required(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/patterns/me")

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_my_patterns_with_invalid_include_private_is_refused(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.get(
        "/api/patterns/me", params={"includePrivate": "maybe"}, headers=owner.headers
    )

    assert validation_fields(response) == {"query.includePrivate"}
