"""What POST and PUT /patterns refuse (422 VALIDATION_ERROR naming the field, nothing
stored) and how user text is stored (plain text, never live markup)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.patterns.models import PatternVersion
from tests.factories import Account, validation_fields
from tests.patterns.helpers import (
    PATTERN_OVERRIDES,
    create_pattern,
    pattern_body,
    pattern_count,
    pattern_row,
    salsa_configuration,
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return PATTERN_OVERRIDES


@pytest.fixture
async def pattern(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner)


def instrument(**changes: Any) -> dict[str, Any]:
    """One valid salsa instrument setting (the clave, which has 4 programs), changed."""
    return {
        "id": "clave",
        "enabled": True,
        "activeProgram": 0,
        "volume": 0.9,
        "pitchOffset": 0,
        **changes,
    }


def configuration_of(*instruments: dict[str, Any]) -> dict[str, Any]:
    return {"instruments": list(instruments)}


async def version_count(db: AsyncSession, pattern_id: str) -> int:
    count = (
        await db.execute(
            select(func.count())
            .select_from(PatternVersion)
            .where(PatternVersion.pattern_id == pattern_id)
        )
    ).scalar_one()
    await db.commit()
    return int(count)


# Invalid values of a field: (case id, the body's changes, the field named in details).
INVALID_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("title-empty", {"title": ""}, "title"),
    ("title-blank", {"title": "   "}, "title"),
    ("title-201-chars", {"title": "x" * 201}, "title"),
    ("title-only-markup", {"title": "<b></b><i> </i>"}, "title"),
    ("title-only-script", {"title": "<script>alert(1)</script>"}, "title"),
    ("title-number", {"title": 42}, "title"),
    ("description-too-long", {"description": "x" * 2001}, "description"),
    ("bpm-79", {"bpm": 79}, "bpm"),
    ("bpm-251", {"bpm": 251}, "bpm"),
    ("bpm-fraction", {"bpm": 120.5}, "bpm"),
    ("bpm-string", {"bpm": "120"}, "bpm"),
    ("key-note-minus-1", {"keyNote": -1}, "keyNote"),
    ("key-note-12", {"keyNote": 12}, "keyNote"),
    ("key-note-string", {"keyNote": "5"}, "keyNote"),
    ("flavor-unknown", {"flavor": "Bachata"}, "flavor"),
    # NUL in any JSON text is refused for the whole body (no database stores it).
    ("flavor-nul", {"flavor": "Sal\x00sa"}, "body"),
    ("flavor-empty", {"flavor": ""}, "flavor"),
    ("is-public-string", {"isPublic": "yes"}, "isPublic"),
    (
        "instrument-of-another-flavor",
        {"configuration": configuration_of(instrument(id="tambora"))},
        "configuration.instruments.0.id",
    ),
    (
        "instrument-unknown-second",
        {"configuration": configuration_of(instrument(), instrument(id="theremin"))},
        "configuration.instruments.1.id",
    ),
    (
        "active-program-beyond-programs",
        {"configuration": configuration_of(instrument(activeProgram=4))},
        "configuration.instruments.0.activeProgram",
    ),
    (
        "active-program-negative",
        {"configuration": configuration_of(instrument(activeProgram=-1))},
        "configuration.instruments.0.activeProgram",
    ),
    (
        "volume-below-0",
        {"configuration": configuration_of(instrument(volume=-0.1))},
        "configuration.instruments.0.volume",
    ),
    (
        "volume-above-1",
        {"configuration": configuration_of(instrument(volume=1.1))},
        "configuration.instruments.0.volume",
    ),
    (
        "pitch-offset-fraction",
        {"configuration": configuration_of(instrument(pitchOffset=1.5))},
        "configuration.instruments.0.pitchOffset",
    ),
    (
        "enabled-string",
        {"configuration": configuration_of(instrument(enabled="true"))},
        "configuration.instruments.0.enabled",
    ),
    (
        "instrument-extra-field",
        {"configuration": configuration_of(instrument(sample="http://evil.example/x.mp3"))},
        "configuration.instruments.0.sample",
    ),
    (
        "configuration-not-an-object",
        {"configuration": "clave"},
        "configuration",
    ),
    (
        "instruments-missing",
        {"configuration": {}},
        "configuration.instruments",
    ),
]

# Fields a client must never set (mass assignment).
SERVER_FIELDS: list[tuple[str, Any]] = [
    ("plays", 1000),
    ("likes", 1000),
    ("userId", "usr_someoneelse"),
    ("id", "pat_chosenbyme"),
    ("machineVersion", 99),
    ("deletedAt", None),
]


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [pytest.param(changes, field, id=case) for case, changes, field in INVALID_VALUES],
)
async def test_create_with_invalid_value_is_refused(
    client: httpx.AsyncClient,
    owner: Account,
    db: AsyncSession,
    changes: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(
        "/api/patterns", json=pattern_body(**changes), headers=owner.headers
    )

    assert field in validation_fields(response)
    assert await pattern_count(db) == 0


async def test_create_with_duplicate_instrument_ids_is_refused(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    body = pattern_body(configuration=configuration_of(instrument(), instrument(volume=0.1)))

    response = await client.post("/api/patterns", json=body, headers=owner.headers)

    fields = validation_fields(response)
    assert fields and all(field.startswith("configuration") for field in fields), fields
    assert await pattern_count(db) == 0


@pytest.mark.parametrize("field", ["title", "flavor", "bpm", "keyNote", "configuration"])
async def test_create_without_required_field_is_refused(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession, field: str
) -> None:
    body = pattern_body()
    del body[field]

    response = await client.post("/api/patterns", json=body, headers=owner.headers)

    assert validation_fields(response) == {field}
    assert await pattern_count(db) == 0


@pytest.mark.parametrize(("field", "value"), SERVER_FIELDS)
async def test_create_with_a_server_field_is_refused(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession, field: str, value: Any
) -> None:
    response = await client.post(
        "/api/patterns", json=pattern_body(**{field: value}), headers=owner.headers
    )

    assert validation_fields(response) == {field}
    assert await pattern_count(db) == 0


async def test_create_with_snake_case_field_is_refused(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    body = pattern_body()
    body["key_note"] = body.pop("keyNote")

    response = await client.post("/api/patterns", json=body, headers=owner.headers)

    assert validation_fields(response) == {"keyNote", "key_note"}
    assert await pattern_count(db) == 0


async def test_create_with_invalid_json_is_refused(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    response = await client.post(
        "/api/patterns",
        content=b'{"title": "Broken",',
        headers={**owner.headers, "Content-Type": "application/json"},
    )

    assert validation_fields(response) == {"body"}
    assert await pattern_count(db) == 0


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"title": "x" * 200}, id="title-200-chars"),
        pytest.param({"bpm": 80}, id="bpm-80"),
        pytest.param({"bpm": 250}, id="bpm-250"),
        pytest.param({"keyNote": 0}, id="key-note-0"),
        pytest.param({"keyNote": 11}, id="key-note-11"),
        pytest.param({"configuration": configuration_of(instrument(volume=0.0))}, id="volume-0"),
        pytest.param({"configuration": configuration_of(instrument(volume=1))}, id="volume-1"),
        pytest.param(
            {"configuration": configuration_of(instrument(activeProgram=3))}, id="last-program"
        ),
        pytest.param(
            {"configuration": configuration_of(instrument(pitchOffset=-12))}, id="pitch-offset-neg"
        ),
        pytest.param({"configuration": configuration_of()}, id="no-instruments"),
    ],
)
async def test_create_accepts_boundary_values(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession, changes: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/patterns", json=pattern_body(**changes), headers=owner.headers
    )

    assert response.status_code == 201, response.text
    assert await pattern_count(db) == 1


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [pytest.param(changes, field, id=case) for case, changes, field in INVALID_VALUES],
)
async def test_update_with_invalid_value_changes_nothing(
    client: httpx.AsyncClient,
    owner: Account,
    pattern: dict[str, Any],
    db: AsyncSession,
    changes: dict[str, Any],
    field: str,
) -> None:
    before = await pattern_row(db, pattern["id"])

    response = await client.put(
        f"/api/patterns/{pattern['id']}", json=changes, headers=owner.headers
    )

    assert field in validation_fields(response)
    assert await pattern_row(db, pattern["id"]) == before
    assert await version_count(db, pattern["id"]) == 0


async def test_update_with_one_invalid_field_stores_none_of_the_valid_ones(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    before = await pattern_row(db, pattern["id"])

    response = await client.put(
        f"/api/patterns/{pattern['id']}",
        json={"title": "Fine title", "bpm": 300},
        headers=owner.headers,
    )

    assert validation_fields(response) == {"bpm"}
    assert await pattern_row(db, pattern["id"]) == before


async def test_update_to_a_flavor_its_configuration_does_not_fit_is_refused(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    before = await pattern_row(db, pattern["id"])

    response = await client.put(
        f"/api/patterns/{pattern['id']}", json={"flavor": "Merengue"}, headers=owner.headers
    )

    # The stored salsa configuration starts with the clave, which merengue does not have.
    assert "configuration.instruments.0.id" in validation_fields(response)
    assert await pattern_row(db, pattern["id"]) == before


@pytest.mark.parametrize(
    "field", ["title", "description", "flavor", "bpm", "keyNote", "isPublic", "configuration"]
)
async def test_update_with_explicit_null_is_refused(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession, field: str
) -> None:
    before = await pattern_row(db, pattern["id"])

    response = await client.put(
        f"/api/patterns/{pattern['id']}", json={field: None}, headers=owner.headers
    )

    assert validation_fields(response) == {field}
    assert await pattern_row(db, pattern["id"]) == before


@pytest.mark.parametrize(("field", "value"), SERVER_FIELDS)
async def test_update_with_a_server_field_is_refused(
    client: httpx.AsyncClient,
    owner: Account,
    pattern: dict[str, Any],
    db: AsyncSession,
    field: str,
    value: Any,
) -> None:
    before = await pattern_row(db, pattern["id"])

    response = await client.put(
        f"/api/patterns/{pattern['id']}", json={field: value}, headers=owner.headers
    )

    assert validation_fields(response) == {field}
    assert await pattern_row(db, pattern["id"]) == before


async def test_update_with_a_body_that_is_not_an_object_is_refused(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    before = await pattern_row(db, pattern["id"])

    response = await client.put(
        f"/api/patterns/{pattern['id']}", json=["title"], headers=owner.headers
    )

    assert validation_fields(response) == {"body"}
    assert await pattern_row(db, pattern["id"]) == before


# --- user text is stored as plain text ------------------------------------------------------


async def test_markup_in_title_and_description_is_stored_without_tags(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    created = await create_pattern(
        client,
        owner,
        title="<b>Hot</b> <script>alert(1)</script>salsa",
        description='<img src=x onerror="alert(1)">Nice <a href="javascript:x()">groove</a>',
    )

    assert (created["title"], created["description"]) == ("Hot salsa", "Nice groove")
    row = await pattern_row(db, created["id"])
    assert (row["title"], row["description"]) == ("Hot salsa", "Nice groove")


async def test_escaped_markup_never_decodes_into_a_tag(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    created = await create_pattern(
        client, owner, title="Montuno", description="&lt;img src=x onerror=alert(1)&gt;Hi"
    )

    row = await pattern_row(db, created["id"])
    assert "<" not in row["description"]
    assert row["description"].endswith("Hi")


async def test_text_that_only_looks_like_markup_is_kept(
    client: httpx.AsyncClient, owner: Account
) -> None:
    created = await create_pattern(client, owner, title="Salsa & son <3", description="a < b")

    data = (await client.get(f"/api/patterns/{created['id']}", headers=owner.headers)).json()
    assert data["data"]["title"] == "Salsa & son <3"
    assert data["data"]["description"] == "a < b"


async def test_markup_in_an_update_is_stored_without_tags(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.put(
        f"/api/patterns/{pattern['id']}",
        json={"title": "<i>New</i> title", "description": "<iframe src=x></iframe>Plain"},
        headers=owner.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["title"] == "New title"
    row = await pattern_row(db, pattern["id"])
    assert (row["title"], row["description"]) == ("New title", "Plain")


async def test_title_is_stored_trimmed(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    created = await create_pattern(client, owner, title="  Guaguancó  ")

    assert (await pattern_row(db, created["id"]))["title"] == "Guaguancó"


async def test_configuration_is_stored_as_sent(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    created = await create_pattern(client, owner)

    assert (await pattern_row(db, created["id"]))["configuration"] == salsa_configuration()
