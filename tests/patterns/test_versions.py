"""Version history of a pattern: every save keeps the previous state; list, fetch,
restore and diff versions (owner only)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.patterns.models import Pattern, PatternVersion
from tests.factories import Account, assert_error, validation_fields
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern

# Version 1 (the create), 2 (after the first update) and 3 (after the second, current).
CONFIG_V1: dict[str, Any] = {
    "instruments": [
        {"id": "clave", "enabled": True, "activeProgram": 0, "volume": 0.9, "pitchOffset": 0},
        {"id": "cowbell", "enabled": True, "activeProgram": 1, "volume": 0.8, "pitchOffset": 0},
        {"id": "congas", "enabled": False, "activeProgram": 0, "volume": 0.5, "pitchOffset": 2},
    ]
}
# clave: all four settings change; cowbell: unchanged; congas: removed; bongos: added.
CONFIG_V3: dict[str, Any] = {
    "instruments": [
        {"id": "clave", "enabled": False, "activeProgram": 2, "volume": 0.6, "pitchOffset": 3},
        {"id": "cowbell", "enabled": True, "activeProgram": 1, "volume": 0.8, "pitchOffset": 0},
        {"id": "bongos", "enabled": True, "activeProgram": 1, "volume": 0.7, "pitchOffset": -1},
    ]
}
STATE_V1: dict[str, Any] = {
    "title": "Son Montuno",
    "description": "First take",
    "flavor": "Salsa",
    "bpm": 180,
    "keyNote": 5,
    "isPublic": False,
    "configuration": CONFIG_V1,
}
UPDATE_1: dict[str, Any] = {"title": "Son Montuno (faster)", "bpm": 200}
STATE_V2: dict[str, Any] = {**STATE_V1, **UPDATE_1}
UPDATE_2: dict[str, Any] = {"keyNote": 7, "configuration": CONFIG_V3}
STATE_V3: dict[str, Any] = {**STATE_V2, **UPDATE_2}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(PATTERN_OVERRIDES)


async def make_history(
    client: httpx.AsyncClient, owner: Account, *, is_public: bool = False
) -> dict[str, Any]:
    """A pattern created as STATE_V1 and updated twice (current state STATE_V3).

    Returns the create response's data."""
    created = await create_pattern(client, owner, **{**STATE_V1, "isPublic": is_public})
    for update in (UPDATE_1, UPDATE_2):
        response = await client.put(
            f"/api/patterns/{created['id']}", json=update, headers=owner.headers
        )
        assert response.status_code == 200, response.text
    return created


@pytest.fixture
async def history(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await make_history(client, owner)


async def get_json(
    client: httpx.AsyncClient, path: str, account: Account, **params: Any
) -> dict[str, Any]:
    response = await client.get(path, headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def stored_versions(db: AsyncSession, pattern_id: str) -> dict[int, dict[str, Any]]:
    """The stored version rows of a pattern: number -> snapshot."""
    rows = (
        await db.execute(
            select(PatternVersion.version, PatternVersion.snapshot).where(
                PatternVersion.pattern_id == pattern_id
            )
        )
    ).all()
    await db.commit()
    return {int(version): dict(snapshot) for version, snapshot in rows}


async def stored_pattern(db: AsyncSession, pattern_id: str) -> tuple[int, int, str]:
    """(version, bpm, title) of the stored pattern row."""
    row = (
        await db.execute(
            select(Pattern.version, Pattern.bpm, Pattern.title).where(Pattern.id == pattern_id)
        )
    ).one()
    await db.commit()
    return int(row[0]), int(row[1]), str(row[2])


# --- numbering ----------------------------------------------------------------------------


async def test_a_new_pattern_is_version_1(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    created = await create_pattern(client, owner, **STATE_V1)

    pattern = await get_json(client, f"/api/patterns/{created['id']}", owner)
    versions = await get_json(client, f"/api/patterns/{created['id']}/versions", owner)

    assert pattern["version"] == 1
    assert [v["version"] for v in versions["versions"]] == [1]
    assert versions["versions"][0]["current"] is True
    assert versions["versions"][0]["state"] == STATE_V1
    assert await stored_versions(db, created["id"]) == {}


async def test_each_update_answers_the_next_version_number(
    client: httpx.AsyncClient, owner: Account
) -> None:
    created = await create_pattern(client, owner, **STATE_V1)

    first = await client.put(f"/api/patterns/{created['id']}", json=UPDATE_1, headers=owner.headers)
    second = await client.put(
        f"/api/patterns/{created['id']}", json=UPDATE_2, headers=owner.headers
    )

    assert first.status_code == 200, first.text
    assert first.json()["data"]["version"] == 2
    assert second.status_code == 200, second.text
    assert second.json()["data"]["version"] == 3
    pattern = await get_json(client, f"/api/patterns/{created['id']}", owner)
    assert pattern["version"] == 3


async def test_each_update_stores_the_previous_state_as_a_version(
    client: httpx.AsyncClient, history: dict[str, Any], db: AsyncSession
) -> None:
    assert await stored_versions(db, history["id"]) == {1: STATE_V1, 2: STATE_V2}
    assert await stored_pattern(db, history["id"]) == (3, 200, "Son Montuno (faster)")


# --- listing ------------------------------------------------------------------------------


async def test_versions_list_newest_first_with_the_current_state_on_top(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any]
) -> None:
    data = await get_json(client, f"/api/patterns/{history['id']}/versions", owner)

    assert [v["version"] for v in data["versions"]] == [3, 2, 1]
    assert [v["current"] for v in data["versions"]] == [True, False, False]
    assert [v["state"] for v in data["versions"]] == [STATE_V3, STATE_V2, STATE_V1]
    assert {v["authorId"] for v in data["versions"]} == {owner.id}
    for item in data["versions"]:
        assert set(item) == {"version", "current", "authorId", "createdAt", "state"}
        assert item["createdAt"].endswith("Z")
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 3, "pages": 1}


async def test_version_created_at_is_when_that_state_was_saved(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any]
) -> None:
    pattern = await get_json(client, f"/api/patterns/{history['id']}", owner)
    data = await get_json(client, f"/api/patterns/{history['id']}/versions", owner)
    created_at = {v["version"]: v["createdAt"] for v in data["versions"]}

    assert created_at[1] == history["createdAt"]
    assert created_at[3] == pattern["updatedAt"]
    assert created_at[1] <= created_at[2] <= created_at[3]


@pytest.mark.parametrize(
    ("page", "expected"),
    [(1, [3]), (2, [2]), (3, [1]), (4, [])],
)
async def test_versions_pagination_with_limit_1(
    client: httpx.AsyncClient,
    owner: Account,
    history: dict[str, Any],
    page: int,
    expected: list[int],
) -> None:
    data = await get_json(
        client, f"/api/patterns/{history['id']}/versions", owner, page=page, limit=1
    )

    assert [v["version"] for v in data["versions"]] == expected
    assert [v["current"] for v in data["versions"]] == [n == 3 for n in expected]
    assert data["pagination"] == {"page": page, "limit": 1, "total": 3, "pages": 3}


@pytest.mark.parametrize(("page", "expected"), [(1, [3, 2]), (2, [1]), (3, [])])
async def test_versions_pagination_with_limit_2(
    client: httpx.AsyncClient,
    owner: Account,
    history: dict[str, Any],
    page: int,
    expected: list[int],
) -> None:
    data = await get_json(
        client, f"/api/patterns/{history['id']}/versions", owner, page=page, limit=2
    )

    assert [v["version"] for v in data["versions"]] == expected
    assert data["pagination"] == {"page": page, "limit": 2, "total": 3, "pages": 2}


async def test_versions_page_2_states_are_the_stored_ones(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any]
) -> None:
    data = await get_json(client, f"/api/patterns/{history['id']}/versions", owner, page=2, limit=1)

    assert data["versions"][0]["state"] == STATE_V2
    assert data["versions"][0]["current"] is False


# --- one version --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "state", "current"),
    [(1, STATE_V1, False), (2, STATE_V2, False), (3, STATE_V3, True)],
)
async def test_a_version_returns_that_state_exactly(
    client: httpx.AsyncClient,
    owner: Account,
    history: dict[str, Any],
    number: int,
    state: dict[str, Any],
    current: bool,
) -> None:
    data = await get_json(client, f"/api/patterns/{history['id']}/versions/{number}", owner)

    assert data["version"] == number
    assert data["current"] is current
    assert data["state"] == state
    assert data["authorId"] == owner.id


@pytest.mark.parametrize("number", [0, 4, 99])
async def test_an_unknown_version_is_not_found(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any], number: int
) -> None:
    response = await client.get(
        f"/api/patterns/{history['id']}/versions/{number}", headers=owner.headers
    )

    assert_error(response, 404, "PATTERN_VERSION_NOT_FOUND")


async def test_versions_of_an_unknown_pattern_are_not_found(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.get(
        "/api/patterns/pat_doesnotexist0000/versions", headers=owner.headers
    )

    assert_error(response, 404, "PATTERN_NOT_FOUND")


# --- restore ------------------------------------------------------------------------------


async def test_restore_makes_the_old_state_current_as_a_new_version(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any]
) -> None:
    response = await client.post(
        f"/api/patterns/{history['id']}/versions/1/restore", headers=owner.headers
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert set(data) == {"id", "title", "version", "updatedAt"}
    assert data["id"] == history["id"]
    assert data["title"] == STATE_V1["title"]
    assert data["version"] == 4
    pattern = await get_json(client, f"/api/patterns/{history['id']}", owner)
    assert pattern["version"] == 4
    assert {key: pattern[key] for key in STATE_V1} == STATE_V1


async def test_restore_keeps_the_replaced_state_as_a_version(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any], db: AsyncSession
) -> None:
    await client.post(f"/api/patterns/{history['id']}/versions/1/restore", headers=owner.headers)

    data = await get_json(client, f"/api/patterns/{history['id']}/versions", owner)

    assert [v["version"] for v in data["versions"]] == [4, 3, 2, 1]
    assert [v["state"] for v in data["versions"]] == [STATE_V1, STATE_V3, STATE_V2, STATE_V1]
    assert data["pagination"]["total"] == 4
    assert await stored_versions(db, history["id"]) == {1: STATE_V1, 2: STATE_V2, 3: STATE_V3}


async def test_restore_is_seen_at_once_by_anonymous_readers(
    client: httpx.AsyncClient, owner: Account
) -> None:
    created = await make_history(client, owner, is_public=True)
    before = await client.get(f"/api/patterns/{created['id']}")  # now cached
    assert before.json()["data"]["bpm"] == STATE_V3["bpm"]

    await client.post(f"/api/patterns/{created['id']}/versions/1/restore", headers=owner.headers)
    after = await client.get(f"/api/patterns/{created['id']}")

    assert after.status_code == 200, after.text
    assert after.json()["data"]["bpm"] == STATE_V1["bpm"]
    assert after.json()["data"]["version"] == 4


async def test_restore_of_an_unknown_version_is_not_found_and_changes_nothing(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        f"/api/patterns/{history['id']}/versions/7/restore", headers=owner.headers
    )

    assert_error(response, 404, "PATTERN_VERSION_NOT_FOUND")
    assert await stored_pattern(db, history["id"]) == (3, 200, "Son Montuno (faster)")
    assert set(await stored_versions(db, history["id"])) == {1, 2}


# --- diff ---------------------------------------------------------------------------------


async def test_diff_says_what_changed_per_field_and_per_instrument(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any]
) -> None:
    response = await client.get(
        f"/api/patterns/{history['id']}/versions/diff",
        params={"from": 1, "to": 3},
        headers=owner.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "data": {
            "patternId": history["id"],
            "fromVersion": 1,
            "toVersion": 3,
            "fields": {
                "title": {"from": "Son Montuno", "to": "Son Montuno (faster)"},
                "bpm": {"from": 180, "to": 200},
                "keyNote": {"from": 5, "to": 7},
            },
            "instruments": [
                {
                    "id": "bongos",
                    "change": "added",
                    "settings": {
                        "id": "bongos",
                        "enabled": True,
                        "activeProgram": 1,
                        "volume": 0.7,
                        "pitchOffset": -1,
                    },
                },
                {
                    "id": "clave",
                    "change": "modified",
                    "fields": {
                        "enabled": {"from": True, "to": False},
                        "activeProgram": {"from": 0, "to": 2},
                        "volume": {"from": 0.9, "to": 0.6},
                        "pitchOffset": {"from": 0, "to": 3},
                    },
                },
                {"id": "congas", "change": "removed"},
            ],
        },
    }


async def test_diff_between_neighbours_lists_only_that_save(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any]
) -> None:
    data = await get_json(
        client, f"/api/patterns/{history['id']}/versions/diff", owner, **{"from": 1, "to": 2}
    )

    assert data["fields"] == {
        "title": {"from": "Son Montuno", "to": "Son Montuno (faster)"},
        "bpm": {"from": 180, "to": 200},
    }
    assert data["instruments"] == []


async def test_diff_backwards_swaps_added_and_removed(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any]
) -> None:
    data = await get_json(
        client, f"/api/patterns/{history['id']}/versions/diff", owner, **{"from": 3, "to": 1}
    )

    assert data["fields"]["bpm"] == {"from": 200, "to": 180}
    assert [(i["id"], i["change"]) for i in data["instruments"]] == [
        ("bongos", "removed"),
        ("clave", "modified"),
        ("congas", "added"),
    ]
    assert data["instruments"][2]["settings"] == CONFIG_V1["instruments"][2]


async def test_diff_of_a_version_with_itself_is_empty(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any]
) -> None:
    data = await get_json(
        client, f"/api/patterns/{history['id']}/versions/diff", owner, **{"from": 2, "to": 2}
    )

    assert data["fields"] == {}
    assert data["instruments"] == []


async def test_diff_with_an_unknown_version_is_not_found(
    client: httpx.AsyncClient, owner: Account, history: dict[str, Any]
) -> None:
    response = await client.get(
        f"/api/patterns/{history['id']}/versions/diff",
        params={"from": 1, "to": 9},
        headers=owner.headers,
    )

    assert_error(response, 404, "PATTERN_VERSION_NOT_FOUND")


@pytest.mark.parametrize(
    ("params", "missing"),
    [({"to": 3}, "from"), ({"from": 1}, "to"), ({}, "from")],
)
async def test_diff_without_from_or_to_is_a_validation_error(
    client: httpx.AsyncClient,
    owner: Account,
    history: dict[str, Any],
    params: dict[str, int],
    missing: str,
) -> None:
    response = await client.get(
        f"/api/patterns/{history['id']}/versions/diff", params=params, headers=owner.headers
    )

    assert any(field.endswith(missing) for field in validation_fields(response))


# --- who may see the history --------------------------------------------------------------

VERSION_ENDPOINTS = [
    ("GET", "/versions"),
    ("GET", "/versions/1"),
    ("GET", "/versions/diff?from=1&to=3"),
    ("POST", "/versions/1/restore"),
]


@pytest.mark.parametrize(("method", "suffix"), VERSION_ENDPOINTS)
async def test_history_of_someone_elses_public_pattern_is_forbidden(
    client: httpx.AsyncClient,
    owner: Account,
    stranger: Account,
    db: AsyncSession,
    method: str,
    suffix: str,
) -> None:
    created = await make_history(client, owner, is_public=True)

    response = await client.request(
        method, f"/api/patterns/{created['id']}{suffix}", headers=stranger.headers
    )

    assert_error(response, 403, "UNAUTHORIZED")
    assert (await stored_pattern(db, created["id"]))[0] == 3


@pytest.mark.parametrize(("method", "suffix"), VERSION_ENDPOINTS)
async def test_history_of_someone_elses_private_pattern_is_not_found(
    client: httpx.AsyncClient,
    stranger: Account,
    history: dict[str, Any],
    db: AsyncSession,
    method: str,
    suffix: str,
) -> None:
    response = await client.request(
        method, f"/api/patterns/{history['id']}{suffix}", headers=stranger.headers
    )

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert (await stored_pattern(db, history["id"]))[0] == 3


@pytest.mark.parametrize(("method", "suffix"), VERSION_ENDPOINTS)
async def test_history_needs_an_account(
    client: httpx.AsyncClient,
    owner: Account,
    db: AsyncSession,
    method: str,
    suffix: str,
) -> None:
    created = await make_history(client, owner, is_public=True)

    response = await client.request(method, f"/api/patterns/{created['id']}{suffix}")

    assert_error(response, 401, "AUTH_REQUIRED")
    assert (await stored_pattern(db, created["id"]))[0] == 3
