"""Reading machines over HTTP: the list, a machine as JSON and as the front end's XML,
its versions."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from beatmachine.machines.xml import parse_machine_xml
from tests.factories import (
    ADMIN_OVERRIDES,
    Account,
    assert_error,
    validation_fields,
)
from tests.machines.helpers import import_real, import_xml, real_machine_xml

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
INSTRUMENT_FIELDS = {
    "id",
    "title",
    "enabled",
    "activeProgram",
    "respectsClave",
    "programs",
    "keyedInstrument",
    "pitchOffset",
    "playBothHands",
    "leftHandPitchOffset",
    "volume",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return ADMIN_OVERRIDES


@pytest.fixture
async def salsa(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    return await import_real(client, admin, "salsa")


async def publish_bpm(client: httpx.AsyncClient, admin: Account, bpm: int) -> None:
    """Publish a new version of salsa that differs from the file by its tempo."""
    data = real_machine_xml("salsa").replace(
        b"<bm:bpm>180</bm:bpm>", f"<bm:bpm>{bpm}</bm:bpm>".encode()
    )
    response = await import_xml(client, admin, data, machine_id="salsa", change_note=f"bpm {bpm}")
    assert response.status_code == 201, response.text


# --- the list ---------------------------------------------------------------------------


async def test_list_is_empty_without_machines(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/machines")

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "data": {"machines": []}}


async def test_list_shows_each_machine_with_id_title_flavor_description(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await import_real(client, admin, "salsa")
    await import_real(client, admin, "merengue")

    response = await client.get("/api/machines")

    assert response.status_code == 200, response.text
    machines = response.json()["data"]["machines"]
    assert [m["id"] for m in machines] == ["merengue", "salsa"]
    merengue, salsa = machines
    assert merengue == {
        "id": "merengue",
        "title": "Merengue Beat Machine",
        "flavor": "Merengue",
        "description": "",
        "currentVersion": 1,
    }
    assert salsa["flavor"] == "Salsa"
    assert salsa["title"] == "Salsa Beat Machine"


# --- one machine ------------------------------------------------------------------------


async def test_get_machine_has_the_part_a_shape(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get("/api/machines/salsa")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert {"id", "title", "flavor", "bpm", "keyNote", "instruments", "version"} <= set(data)
    assert (data["id"], data["flavor"], data["version"]) == ("salsa", "Salsa", 1)
    for instrument in data["instruments"]:
        assert set(instrument) >= INSTRUMENT_FIELDS
        for program in instrument["programs"]:
            assert {"title", "length", "notes"} <= set(program)
            for note in program["notes"]:
                assert {"index", "pitch"} <= set(note)
    assert data == salsa


async def test_get_machine_serves_what_the_file_holds(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    data = (await client.get("/api/machines/salsa")).json()["data"]

    assert data["bpm"] == 180
    assert data["keyNote"] == 0
    assert data["title"] == "Salsa Beat Machine"
    assert data["machineKey"] == "SALSA-DEFAULT"
    clave = data["instruments"][0]
    assert {k: clave[k] for k in ("id", "title", "enabled", "activeProgram", "respectsClave")} == {
        "id": "clave",
        "title": "Clave",
        "enabled": True,
        "activeProgram": 0,
        "respectsClave": True,
    }
    assert clave["volume"] == 1.0
    son = clave["programs"][0]
    assert (son["title"], son["length"]) == ("Son Clave", 16)
    assert [(n["index"], n["pitch"]) for n in son["notes"]] == [
        (2, 0),
        (4, 0),
        (8, 0),
        (11, 0),
        (14, 0),
    ]
    cowbell = data["instruments"][1]
    assert cowbell["programs"][0]["notes"][1]["velocity"] == 0.2
    piano = data["instruments"][3]
    assert (piano["id"], piano["keyedInstrument"], piano["pitchOffset"]) == ("piano", True, 60)
    assert (piano["playBothHands"], piano["leftHandPitchOffset"], piano["volume"]) == (
        True,
        48,
        0.4,
    )


async def test_get_machine_xml_parses_back_to_the_same_document(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get("/api/machines/salsa.xml")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    document = parse_machine_xml(response.content, "salsa")
    assert {**document.model_dump(mode="json", by_alias=True), "version": 1} == salsa


async def test_accept_xml_gives_the_same_xml_as_the_xml_path(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get("/api/machines/salsa", headers={"Accept": "application/xml"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert response.content == (await client.get("/api/machines/salsa.xml")).content
    document = parse_machine_xml(response.content, "salsa")
    assert document.bpm == 180
    assert document.instruments[0].programs[0].title == "Son Clave"


@pytest.mark.parametrize(
    "path",
    [
        "/api/machines/tango",
        "/api/machines/tango.xml",
        "/api/machines/tango/versions",
        "/api/machines/tango/versions/1",
    ],
)
async def test_unknown_machine_is_machine_not_found(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert_error(response, 404, "MACHINE_NOT_FOUND")


async def test_unknown_machine_as_xml_is_machine_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/machines/tango", headers={"Accept": "application/xml"})

    assert_error(response, 404, "MACHINE_NOT_FOUND")


# --- versions ---------------------------------------------------------------------------


async def test_versions_are_listed_newest_first(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any]
) -> None:
    await publish_bpm(client, admin, 181)
    await publish_bpm(client, admin, 182)

    response = await client.get("/api/machines/salsa/versions")

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [v["version"] for v in data["versions"]] == [3, 2, 1]
    assert [v["current"] for v in data["versions"]] == [True, False, False]
    assert [v["changeNote"] for v in data["versions"]] == [
        "bpm 182",
        "bpm 181",
        "Imported from XML",
    ]
    newest = data["versions"][0]
    assert set(newest) == {"version", "changeNote", "contentHash", "author", "createdAt", "current"}
    assert newest["author"] == {"id": admin.id, "displayName": "Admin"}
    assert ISO_Z.match(newest["createdAt"])
    assert re.fullmatch(r"[0-9a-f]{64}", newest["contentHash"])
    assert len({v["contentHash"] for v in data["versions"]}) == 3
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 3, "pages": 1}


async def test_versions_are_paginated(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any]
) -> None:
    await publish_bpm(client, admin, 181)
    await publish_bpm(client, admin, 182)

    first = await client.get("/api/machines/salsa/versions", params={"limit": 2})
    second = await client.get("/api/machines/salsa/versions", params={"limit": 2, "page": 2})

    assert [v["version"] for v in first.json()["data"]["versions"]] == [3, 2]
    assert [v["version"] for v in second.json()["data"]["versions"]] == [1]
    assert second.json()["data"]["pagination"] == {"page": 2, "limit": 2, "total": 3, "pages": 2}


async def test_versions_limit_over_100_is_a_validation_error(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get("/api/machines/salsa/versions", params={"limit": 101})

    assert validation_fields(response) == {"query.limit"}


async def test_old_version_stays_readable(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any]
) -> None:
    await publish_bpm(client, admin, 181)

    old = await client.get("/api/machines/salsa/versions/1")
    new = await client.get("/api/machines/salsa/versions/2")
    current = await client.get("/api/machines/salsa")

    assert old.status_code == 200, old.text
    assert old.json()["data"] == salsa
    assert (new.json()["data"]["bpm"], new.json()["data"]["version"]) == (181, 2)
    assert current.json()["data"] == new.json()["data"]


async def test_old_version_as_xml(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any]
) -> None:
    await publish_bpm(client, admin, 181)

    response = await client.get(
        "/api/machines/salsa/versions/1", headers={"Accept": "application/xml"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert parse_machine_xml(response.content, "salsa").bpm == 180


async def test_unknown_version_is_machine_version_not_found(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get("/api/machines/salsa/versions/2")

    assert_error(response, 404, "MACHINE_VERSION_NOT_FOUND")
