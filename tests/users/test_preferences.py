"""PUT /api/users/me/preferences: every preference of the data model, each validated."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import assert_error, register, validation_fields
from tests.users.helpers import preferences_row

URL = "/api/users/me/preferences"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Flavors come from the machines the server serves: install the defaults."""
    return {"INSTALL_DEFAULT_MACHINES": True}


ALL_CHANGED = {
    "defaultBpm": 180,
    "defaultKey": 7,
    "defaultFlavor": "Merengue",
    "useGlassUI": False,
    "autoPlay": True,
    "showBeatNumbers": False,
    "defaultVolume": 0.25,
    "theme": "dark",
    "language": "nb-NO",
    "notifyLikes": False,
    "notifyComments": False,
    "notifyFollows": False,
    "notifyNewsletter": True,
}
STORED_NAMES = {
    "defaultBpm": "default_bpm",
    "defaultKey": "default_key",
    "defaultFlavor": "default_flavor",
    "useGlassUI": "use_glass_ui",
    "autoPlay": "auto_play",
    "showBeatNumbers": "show_beat_numbers",
    "defaultVolume": "default_volume",
    "theme": "theme",
    "language": "language",
    "notifyLikes": "notify_likes",
    "notifyComments": "notify_comments",
    "notifyFollows": "notify_follows",
    "notifyNewsletter": "notify_newsletter",
}


async def test_update_all_preferences_returns_the_full_set(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await client.put(URL, headers=account.headers, json=ALL_CHANGED)

    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"preferences": ALL_CHANGED}}
    stored = await preferences_row(db, account.id)
    assert stored == {STORED_NAMES[key]: value for key, value in ALL_CHANGED.items()}


async def test_updated_preferences_show_in_me(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await client.put(URL, headers=account.headers, json=ALL_CHANGED)

    me = await client.get("/api/users/me", headers=account.headers)

    assert me.json()["data"]["preferences"] == ALL_CHANGED


async def test_partial_update_keeps_the_other_preferences(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    before = await preferences_row(db, account.id)

    response = await client.put(URL, headers=account.headers, json={"defaultBpm": 95})

    assert response.status_code == 200
    preferences = response.json()["data"]["preferences"]
    assert preferences["defaultBpm"] == 95
    assert preferences["defaultKey"] == 0
    assert preferences["defaultFlavor"] == "Salsa"
    assert preferences["useGlassUI"] is True
    assert preferences["theme"] == "auto"
    assert await preferences_row(db, account.id) == {**before, "default_bpm": 95}


async def test_later_partial_update_keeps_an_earlier_one(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    await client.put(URL, headers=account.headers, json={"theme": "light"})

    response = await client.put(URL, headers=account.headers, json={"language": "es"})

    assert response.status_code == 200
    preferences = response.json()["data"]["preferences"]
    assert (preferences["theme"], preferences["language"]) == ("light", "es")
    stored = await preferences_row(db, account.id)
    assert (stored["theme"], stored["language"]) == ("light", "es")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("defaultBpm", 80),
        ("defaultBpm", 250),
        # JSON Schema's integer: a number with no fraction, however it is written.
        ("defaultBpm", 120.0),
        ("defaultKey", 0),
        ("defaultKey", 11),
        ("defaultFlavor", "Salsa"),
        ("defaultFlavor", "Merengue"),
        ("defaultVolume", 0),
        ("defaultVolume", 1),
        ("defaultVolume", 0.5),
        ("theme", "light"),
        ("theme", "dark"),
        ("theme", "auto"),
        ("language", "en"),
        ("language", "nb-NO"),
        ("language", "pt-BR"),
        ("useGlassUI", False),
        ("autoPlay", True),
        ("showBeatNumbers", False),
        ("notifyLikes", False),
        ("notifyComments", False),
        ("notifyFollows", False),
        ("notifyNewsletter", True),
    ],
)
async def test_valid_preference_value_is_stored(
    client: httpx.AsyncClient, db: AsyncSession, field: str, value: Any
) -> None:
    account = await register(client)

    response = await client.put(URL, headers=account.headers, json={field: value})

    assert response.status_code == 200, response.text
    assert response.json()["data"]["preferences"][field] == value
    assert (await preferences_row(db, account.id))[STORED_NAMES[field]] == value


INVALID_VALUES: list[tuple[str, Any]] = [
    ("defaultBpm", 79),
    ("defaultBpm", 251),
    ("defaultBpm", 0),
    ("defaultBpm", 120.5),
    ("defaultBpm", "120"),
    ("defaultBpm", True),
    ("defaultKey", -1),
    ("defaultKey", 12),
    ("defaultKey", 1.5),
    ("defaultKey", "3"),
    ("defaultKey", False),
    ("defaultFlavor", "Bachata"),
    ("defaultFlavor", "salsa"),
    ("defaultFlavor", ""),
    ("defaultFlavor", 5),
    ("useGlassUI", "true"),
    ("useGlassUI", 1),
    ("useGlassUI", 0),
    ("autoPlay", "yes"),
    ("autoPlay", 1),
    ("showBeatNumbers", "false"),
    ("defaultVolume", -0.1),
    ("defaultVolume", 1.01),
    ("defaultVolume", 2),
    ("defaultVolume", "0.5"),
    ("defaultVolume", True),
    ("theme", "Dark"),
    ("theme", "blue"),
    ("theme", ""),
    ("language", "english"),
    ("language", "EN"),
    ("language", "nb_NO"),
    ("language", "en-"),
    ("language", ""),
    ("language", 7),
    ("notifyLikes", "false"),
    ("notifyComments", 0),
    ("notifyFollows", "no"),
    ("notifyNewsletter", 1),
    ("notifyNewsletter", [True]),
]
INVALID_VALUES += [(field, None) for field in STORED_NAMES]


@pytest.mark.parametrize(
    ("field", "value"),
    [pytest.param(field, value, id=f"{field}={value!r}") for field, value in INVALID_VALUES],
)
async def test_invalid_preference_is_refused_naming_the_field(
    client: httpx.AsyncClient, db: AsyncSession, field: str, value: Any
) -> None:
    account = await register(client)
    before = await preferences_row(db, account.id)

    response = await client.put(URL, headers=account.headers, json={field: value})

    assert validation_fields(response) == {field}
    assert await preferences_row(db, account.id) == before


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_volume_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, literal: str
) -> None:
    account = await register(client)
    before = await preferences_row(db, account.id)

    response = await client.put(
        URL,
        headers={**account.headers, "Content-Type": "application/json"},
        content=f'{{"defaultVolume": {literal}}}'.encode(),
    )

    assert_error(response, 422, "VALIDATION_ERROR")
    assert await preferences_row(db, account.id) == before


@pytest.mark.parametrize("field", ["isAdmin", "volume", "use_glass_ui", "useGlassUi", "email"])
async def test_unknown_preference_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, field: str
) -> None:
    account = await register(client)
    before = await preferences_row(db, account.id)

    response = await client.put(URL, headers=account.headers, json={field: True})

    assert validation_fields(response) == {field}
    assert await preferences_row(db, account.id) == before


async def test_one_invalid_preference_refuses_the_whole_update(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    before = await preferences_row(db, account.id)

    response = await client.put(
        URL, headers=account.headers, json={"defaultBpm": 140, "theme": "neon"}
    )

    assert validation_fields(response) == {"theme"}
    assert await preferences_row(db, account.id) == before


async def test_unknown_flavor_beside_valid_fields_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    before = await preferences_row(db, account.id)

    response = await client.put(
        URL, headers=account.headers, json={"defaultBpm": 140, "defaultFlavor": "Bachata"}
    )

    assert validation_fields(response) == {"defaultFlavor"}
    assert await preferences_row(db, account.id) == before


async def test_every_invalid_field_is_named(client: httpx.AsyncClient) -> None:
    account = await register(client)

    response = await client.put(
        URL,
        headers=account.headers,
        json={"defaultBpm": 500, "defaultKey": 12, "useGlassUI": "yes", "language": "??"},
    )

    assert validation_fields(response) == {"defaultBpm", "defaultKey", "useGlassUI", "language"}


async def test_empty_update_changes_nothing(client: httpx.AsyncClient, db: AsyncSession) -> None:
    account = await register(client)
    before = await preferences_row(db, account.id)

    response = await client.put(URL, headers=account.headers, json={})

    assert response.status_code == 200
    assert response.json()["data"]["preferences"]["defaultBpm"] == 120
    assert await preferences_row(db, account.id) == before


async def test_malformed_json_is_refused(client: httpx.AsyncClient, db: AsyncSession) -> None:
    account = await register(client)
    before = await preferences_row(db, account.id)

    response = await client.put(
        URL,
        headers={**account.headers, "Content-Type": "application/json"},
        content=b'{"defaultBpm": 1',
    )

    assert validation_fields(response) == {"body"}
    assert await preferences_row(db, account.id) == before


async def test_wrong_content_type_is_unsupported_media_type(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    before = await preferences_row(db, account.id)

    response = await client.put(
        URL,
        headers={**account.headers, "Content-Type": "application/x-www-form-urlencoded"},
        content=b"defaultBpm=140",
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await preferences_row(db, account.id) == before


async def test_preferences_without_token_is_auth_required(client: httpx.AsyncClient) -> None:
    response = await client.put(URL, json={"defaultBpm": 140})

    assert_error(response, 401, "AUTH_REQUIRED")
