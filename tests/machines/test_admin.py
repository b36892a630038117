"""Admin-only writes: XML import (and what it refuses), create, update, rollback, custom
instruments; every refusal leaves the stored versions as they were."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.machines.models import MachineVersion
from beatmachine.machines.xml import MAX_XML_BYTES
from tests.factories import (
    ADMIN_OVERRIDES,
    Account,
    assert_error,
    register,
    validation_fields,
)
from tests.machines.helpers import (
    BILLION_LAUGHS,
    XXE,
    import_real,
    import_xml,
    instrument_body,
    instrument_xml,
    machine_body,
    machine_xml,
    program_xml,
    real_machine_xml,
    stored_machine_ids,
    stored_versions,
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return ADMIN_OVERRIDES


@pytest.fixture
async def salsa(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    return await import_real(client, admin, "salsa")


@pytest.fixture
async def bachata(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    response = await client.post("/api/machines", json=machine_body(), headers=admin.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def import_refusal(response: httpx.Response) -> dict[str, Any]:
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["message"].startswith("The machine XML was refused")
    details: dict[str, Any] = error["details"]
    return details


# --- XML import -------------------------------------------------------------------------


async def test_import_publishes_the_real_file_as_version_1(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    response = await import_xml(client, admin, real_machine_xml("merengue"))

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert (data["id"], data["flavor"], data["version"]) == ("merengue", "Merengue", 1)
    assert (data["bpm"], data["keyNote"]) == (160, 8)
    assert [i["id"] for i in data["instruments"]][-1] == "kickdrum"
    assert await stored_versions(db, "merengue") == [1]
    row = (await db.execute(select(MachineVersion))).scalar_one()
    assert (row.author_id, row.change_note) == (admin.id, "Imported from XML")


async def test_import_with_id_and_change_note(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    response = await import_xml(
        client, admin, real_machine_xml("salsa"), machine_id="salsa", change_note="From the app"
    )

    assert response.status_code == 201, response.text
    assert response.json()["data"]["id"] == "salsa"
    row = (await db.execute(select(MachineVersion))).scalar_one()
    assert row.change_note == "From the app"


async def test_import_of_an_existing_machine_publishes_a_new_version(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    data = real_machine_xml("salsa").replace(
        b"<bm:keyNote>0</bm:keyNote>", b"<bm:keyNote>5</bm:keyNote>"
    )

    response = await import_xml(client, admin, data, machine_id="salsa")

    assert response.status_code == 201, response.text
    assert (response.json()["data"]["version"], response.json()["data"]["keyNote"]) == (2, 5)
    assert await stored_versions(db, "salsa") == [1, 2]


async def test_import_refuses_billion_laughs(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    response = await import_xml(client, admin, BILLION_LAUGHS)

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert "unsafe XML" in error["message"]
    assert await stored_machine_ids(db) == []


async def test_import_refuses_external_entities(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    response = await import_xml(client, admin, XXE)

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert "unsafe XML" in error["message"]
    assert "root:" not in response.text
    assert await stored_machine_ids(db) == []


async def test_import_refuses_xml_that_is_not_well_formed(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    response = await import_xml(client, admin, b"<bm:Machine><unclosed>")

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert "not well-formed" in error["message"]
    assert await stored_machine_ids(db) == []


@pytest.mark.parametrize(
    ("data", "element"),
    [
        (
            machine_xml(instrument_xml(program_xml('<bm:Note pitch="0" />'))),
            "Clave/programs/Program[0]/Note[0]",
        ),
        (machine_xml(instrument_xml("<tempo>3</tempo>")), "Clave/tempo"),
        (machine_xml(instrument_xml("<activeProgram>1</activeProgram>" + program_xml())), "Clave"),
        (
            machine_xml(instrument_xml(program_xml('<bm:Note index="4" pitch="0" />', length=4))),
            "Clave/programs/Program[0]",
        ),
        (
            machine_xml(
                instrument_xml(program_xml('<bm:Note index="0" pitch="0" velocity="2" />'))
            ),
            "Clave/programs/Program[0]/Note[0]",
        ),
    ],
    ids=[
        "note-without-index",
        "unknown-instrument-element",
        "active-program-out-of-range",
        "note-index-at-length",
        "velocity-over-1",
    ],
)
async def test_import_names_the_element_at_fault(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession, data: bytes, element: str
) -> None:
    response = await import_xml(client, admin, data)

    assert import_refusal(response)["element"] == element
    assert await stored_machine_ids(db) == []


async def test_import_refusal_keeps_the_current_version(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    data = real_machine_xml("salsa").replace(b"<bm:bpm>180</bm:bpm>", b"<bm:bpm>many</bm:bpm>")

    response = await import_xml(client, admin, data, machine_id="salsa")

    assert import_refusal(response)["element"] == "Machine/bpm"
    assert await stored_versions(db, "salsa") == [1]


async def test_import_over_the_body_limit_is_payload_too_large(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    data = machine_xml("<!--" + "x" * MAX_XML_BYTES + "-->")

    response = await import_xml(client, admin, data)

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await stored_machine_ids(db) == []


@pytest.mark.parametrize("settings_overrides", [{**ADMIN_OVERRIDES, "MAX_BODY_BYTES": 4 * 2**20}])
async def test_import_over_two_mebibytes_is_refused_by_the_parser(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    data = machine_xml("<!--" + "x" * MAX_XML_BYTES + "-->")

    response = await import_xml(client, admin, data)

    details = import_refusal(response)
    assert details["maxBytes"] == MAX_XML_BYTES
    assert await stored_machine_ids(db) == []


async def test_import_needs_an_xml_content_type(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    response = await client.post(
        "/api/machines/import",
        content=real_machine_xml("salsa"),
        headers={**admin.headers, "Content-Type": "text/plain"},
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await stored_machine_ids(db) == []


async def test_import_refuses_an_id_that_is_not_a_slug(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    response = await import_xml(client, admin, real_machine_xml("salsa"), machine_id="Salsa!")

    assert validation_fields(response) == {"query.id"}
    assert await stored_machine_ids(db) == []


# --- create and update ------------------------------------------------------------------


async def test_create_machine_returns_version_1(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    response = await client.post(
        "/api/machines", json=machine_body(changeNote="First draft"), headers=admin.headers
    )

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert (data["id"], data["title"], data["flavor"], data["version"]) == (
        "bachata",
        "Bachata Beat Machine",
        "Bachata",
        1,
    )
    assert (data["bpm"], data["keyNote"]) == (130, 2)
    guira = data["instruments"][0]
    assert (guira["id"], guira["volume"], guira["pitchOffset"]) == ("guira", 1.0, 0)
    assert await stored_versions(db, "bachata") == [1]
    row = (await db.execute(select(MachineVersion))).scalar_one()
    assert row.change_note == "First draft"
    listed = (await client.get("/api/machines")).json()["data"]["machines"]
    assert [m["id"] for m in listed] == ["bachata"]


async def test_create_with_an_existing_id_is_a_conflict(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        "/api/machines", json=machine_body(flavor="Bachata Moderna"), headers=admin.headers
    )

    assert_error(response, 409, "CONFLICT")
    assert await stored_versions(db, "bachata") == [1]


async def test_create_with_an_existing_flavor_is_a_conflict(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        "/api/machines", json=machine_body("bachata2"), headers=admin.headers
    )

    assert_error(response, 409, "CONFLICT")
    assert await stored_machine_ids(db) == ["bachata"]


def _instrument(**changes: Any) -> dict[str, Any]:
    return {**machine_body()["instruments"][0], **changes}


def _program(**changes: Any) -> dict[str, Any]:
    return {**machine_body()["instruments"][0]["programs"][0], **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "Bachata!"}, "id"),
        ({"id": "1bachata"}, "id"),
        ({"bpm": 39}, "bpm"),
        ({"keyNote": 12}, "keyNote"),
        ({"flavor": ""}, "flavor"),
        ({"title": "Bad\x01title"}, "title"),
        ({"instruments": [_instrument(id="Guira")]}, "instruments.0.id"),
        ({"instruments": [_instrument(activeProgram=1)]}, "instruments.0"),
        ({"instruments": [_instrument(volume=1.5)]}, "instruments.0.volume"),
        (
            {"instruments": [_instrument(programs=[_program(notes=[{"index": 4, "pitch": 0}])])]},
            "instruments.0.programs.0",
        ),
        (
            {
                "instruments": [
                    _instrument(
                        programs=[_program(notes=[{"index": 0, "pitch": 0, "velocity": 1.01}])]
                    )
                ]
            },
            "instruments.0.programs.0.notes.0.velocity",
        ),
        ({"instruments": [_instrument(), _instrument(title="Again")]}, "body"),
        ({"instruments": [_instrument(element="Bongos")]}, "instruments.0"),
        ({"surprise": True}, "surprise"),
    ],
    ids=[
        "id-not-a-slug",
        "id-starting-with-digit",
        "bpm-too-low",
        "key-note-too-high",
        "empty-flavor",
        "control-character",
        "instrument-id-not-a-slug",
        "active-program-outside-programs",
        "volume-over-1",
        "note-index-at-length",
        "velocity-over-1",
        "duplicate-instrument-id",
        "element-not-spelling-the-id",
        "unknown-field",
    ],
)
async def test_create_refuses_an_invalid_machine(
    client: httpx.AsyncClient,
    admin: Account,
    db: AsyncSession,
    changes: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(
        "/api/machines", json=machine_body(**changes), headers=admin.headers
    )

    assert field in validation_fields(response)
    assert await stored_machine_ids(db) == []


async def test_update_publishes_a_new_version(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.put(
        "/api/machines/bachata",
        json=machine_body(bpm=140, title="Bachata 2", changeNote="Faster"),
        headers=admin.headers,
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["version"], data["bpm"], data["title"]) == (2, 140, "Bachata 2")
    assert await stored_versions(db, "bachata") == [1, 2]
    current = (await client.get("/api/machines/bachata")).json()["data"]
    assert (current["version"], current["bpm"]) == (2, 140)
    listed = (await client.get("/api/machines")).json()["data"]["machines"]
    assert (listed[0]["title"], listed[0]["currentVersion"]) == ("Bachata 2", 2)
    versions = (await client.get("/api/machines/bachata/versions")).json()["data"]["versions"]
    assert versions[0]["changeNote"] == "Faster"


async def test_update_of_an_unknown_machine_is_machine_not_found(
    client: httpx.AsyncClient, admin: Account, db: AsyncSession
) -> None:
    response = await client.put("/api/machines/bachata", json=machine_body(), headers=admin.headers)

    assert_error(response, 404, "MACHINE_NOT_FOUND")
    assert await stored_machine_ids(db) == []


async def test_update_with_another_id_in_the_body_is_refused(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.put(
        "/api/machines/bachata", json=machine_body("kizomba"), headers=admin.headers
    )

    assert validation_fields(response) == {"id"}
    assert await stored_versions(db, "bachata") == [1]
    assert await stored_machine_ids(db) == ["bachata"]


async def test_update_cannot_change_the_flavor(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.put(
        "/api/machines/bachata", json=machine_body(flavor="Kizomba"), headers=admin.headers
    )

    assert validation_fields(response) == {"flavor"}
    assert await stored_versions(db, "bachata") == [1]


async def test_invalid_update_stores_no_version(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any], db: AsyncSession
) -> None:
    body = machine_body(instruments=[_instrument(activeProgram=3)])

    response = await client.put("/api/machines/bachata", json=body, headers=admin.headers)

    assert "instruments.0" in validation_fields(response)
    assert await stored_versions(db, "bachata") == [1]


# --- rollback ---------------------------------------------------------------------------


async def test_rollback_publishes_the_old_content_as_a_new_version(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any], db: AsyncSession
) -> None:
    await client.put("/api/machines/bachata", json=machine_body(bpm=150), headers=admin.headers)

    response = await client.post(
        "/api/machines/bachata/rollback", json={"version": 1}, headers=admin.headers
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["version"], data["bpm"]) == (3, 130)
    assert {**data, "version": 1} == bachata
    assert await stored_versions(db, "bachata") == [1, 2, 3]
    versions = (await client.get("/api/machines/bachata/versions")).json()["data"]["versions"]
    assert versions[0]["changeNote"] == "Rollback to version 1"
    assert versions[0]["contentHash"] == versions[2]["contentHash"]
    assert (await client.get("/api/machines/bachata")).json()["data"]["bpm"] == 130


async def test_rollback_keeps_a_given_change_note(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/machines/bachata/rollback",
        json={"version": 1, "changeNote": "Back to basics"},
        headers=admin.headers,
    )

    assert response.status_code == 200, response.text
    versions = (await client.get("/api/machines/bachata/versions")).json()["data"]["versions"]
    assert versions[0]["changeNote"] == "Back to basics"


async def test_rollback_to_an_unknown_version_is_not_found(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        "/api/machines/bachata/rollback", json={"version": 7}, headers=admin.headers
    )

    assert_error(response, 404, "MACHINE_VERSION_NOT_FOUND")
    assert await stored_versions(db, "bachata") == [1]


async def test_rollback_to_version_0_is_a_validation_error(
    client: httpx.AsyncClient, admin: Account, bachata: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        "/api/machines/bachata/rollback", json={"version": 0}, headers=admin.headers
    )

    assert validation_fields(response) == {"version"}
    assert await stored_versions(db, "bachata") == [1]


async def test_rollback_of_an_unknown_machine_is_machine_not_found(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.post(
        "/api/machines/tango/rollback", json={"version": 1}, headers=admin.headers
    )

    assert_error(response, 404, "MACHINE_NOT_FOUND")


# --- custom instruments -----------------------------------------------------------------


async def test_add_instrument_publishes_a_new_version_with_it(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        "/api/machines/salsa/instruments", json=instrument_body(), headers=admin.headers
    )

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["version"] == 2
    assert [i["id"] for i in data["instruments"]] == [
        *(i["id"] for i in salsa["instruments"]),
        "conga2",
    ]
    added = data["instruments"][-1]
    assert (added["title"], added["volume"], added["activeProgram"]) == ("Second Conga", 0.8, 0)
    assert added["programs"][0]["notes"][1] == {
        "index": 6,
        "pitch": 3,
        "velocity": 0.5,
        "length": None,
        "hand": None,
        "pianoTonic": None,
    }
    assert await stored_versions(db, "salsa") == [1, 2]
    versions = (await client.get("/api/machines/salsa/versions")).json()["data"]["versions"]
    assert versions[0]["changeNote"] == "Add instrument conga2"


async def test_added_instrument_survives_the_xml_export(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any]
) -> None:
    await client.post(
        "/api/machines/salsa/instruments",
        json=instrument_body("conga-2"),
        headers=admin.headers,
    )

    exported = (await client.get("/api/machines/salsa.xml")).content
    response = await import_xml(client, admin, exported, machine_id="salsa")

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["instruments"][-1]["id"] == "conga-2"
    current = (await client.get("/api/machines/salsa/versions/2")).json()["data"]
    assert {**data, "version": 2} == current


async def test_add_instrument_with_an_existing_id_is_a_conflict(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.post(
        "/api/machines/salsa/instruments", json=instrument_body("clave"), headers=admin.headers
    )

    assert_error(response, 409, "CONFLICT")
    assert await stored_versions(db, "salsa") == [1]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "Conga 2"}, "id"),
        ({"id": ""}, "id"),
        (
            {"programs": [{"title": "Tumbao", "length": 8, "notes": [{"index": 8, "pitch": 0}]}]},
            "programs.0",
        ),
        (
            {
                "programs": [
                    {
                        "title": "Tumbao",
                        "length": 8,
                        "notes": [{"index": 0, "pitch": 0, "velocity": 1.5}],
                    }
                ]
            },
            "programs.0.notes.0.velocity",
        ),
        (
            {
                "programs": [
                    {
                        "title": "Tumbao",
                        "length": 8,
                        "notes": [{"index": 0, "pitch": 0, "velocity": -0.1}],
                    }
                ]
            },
            "programs.0.notes.0.velocity",
        ),
        ({"activeProgram": 1}, "body"),
        ({"activeProgram": 2, "programs": []}, "body"),
        ({"activeProgram": -1}, "activeProgram"),
        ({"volume": 1.01}, "volume"),
        ({"title": ...}, "title"),
        ({"hue": "red"}, "hue"),
    ],
    ids=[
        "id-with-space",
        "empty-id",
        "note-index-at-length",
        "velocity-over-1",
        "negative-velocity",
        "active-program-outside-programs",
        "active-program-without-programs",
        "negative-active-program",
        "volume-over-1",
        "missing-title",
        "unknown-field",
    ],
)
async def test_add_instrument_refuses_an_invalid_instrument(
    client: httpx.AsyncClient,
    admin: Account,
    salsa: dict[str, Any],
    db: AsyncSession,
    changes: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(
        "/api/machines/salsa/instruments", json=instrument_body(**changes), headers=admin.headers
    )

    assert field in validation_fields(response)
    assert await stored_versions(db, "salsa") == [1]


async def test_add_instrument_to_an_unknown_machine_is_machine_not_found(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.post(
        "/api/machines/tango/instruments", json=instrument_body(), headers=admin.headers
    )

    assert_error(response, 404, "MACHINE_NOT_FOUND")


async def test_replace_instrument_publishes_a_new_version(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    body = instrument_body("clave", title="Wood Clave", volume=0.3, changeNote="Softer clave")

    response = await client.put(
        "/api/machines/salsa/instruments/clave", json=body, headers=admin.headers
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["version"] == 2
    clave = data["instruments"][0]
    assert (clave["id"], clave["title"], clave["volume"]) == ("clave", "Wood Clave", 0.3)
    assert [p["title"] for p in clave["programs"]] == ["Tumbao"]
    assert data["instruments"][1:] == salsa["instruments"][1:]
    assert await stored_versions(db, "salsa") == [1, 2]
    versions = (await client.get("/api/machines/salsa/versions")).json()["data"]["versions"]
    assert versions[0]["changeNote"] == "Softer clave"


async def test_replace_instrument_can_rename_it(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any]
) -> None:
    response = await client.put(
        "/api/machines/salsa/instruments/clave",
        json=instrument_body("clave2"),
        headers=admin.headers,
    )

    assert response.status_code == 200, response.text
    ids = [i["id"] for i in response.json()["data"]["instruments"]]
    assert ids[0] == "clave2"
    assert "clave" not in ids


async def test_replace_instrument_onto_another_ones_id_is_a_conflict(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.put(
        "/api/machines/salsa/instruments/clave",
        json=instrument_body("cowbell"),
        headers=admin.headers,
    )

    assert_error(response, 409, "CONFLICT")
    assert await stored_versions(db, "salsa") == [1]


async def test_replace_unknown_instrument_is_instrument_not_found(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.put(
        "/api/machines/salsa/instruments/triangle",
        json=instrument_body("triangle"),
        headers=admin.headers,
    )

    assert_error(response, 404, "INSTRUMENT_NOT_FOUND")
    assert await stored_versions(db, "salsa") == [1]


async def test_replace_instrument_refuses_an_invalid_one(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.put(
        "/api/machines/salsa/instruments/clave",
        json=instrument_body("clave", volume=2),
        headers=admin.headers,
    )

    assert validation_fields(response) == {"volume"}
    assert await stored_versions(db, "salsa") == [1]


async def test_remove_instrument_publishes_a_version_without_it(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.delete("/api/machines/salsa/instruments/bongos", headers=admin.headers)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["version"] == 2
    assert [i["id"] for i in data["instruments"]] == [
        i["id"] for i in salsa["instruments"] if i["id"] != "bongos"
    ]
    assert await stored_versions(db, "salsa") == [1, 2]
    old = (await client.get("/api/machines/salsa/versions/1")).json()["data"]
    assert "bongos" in [i["id"] for i in old["instruments"]]


async def test_remove_unknown_instrument_is_instrument_not_found(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], db: AsyncSession
) -> None:
    response = await client.delete(
        "/api/machines/salsa/instruments/triangle", headers=admin.headers
    )

    assert_error(response, 404, "INSTRUMENT_NOT_FOUND")
    assert await stored_versions(db, "salsa") == [1]


# --- who may write ----------------------------------------------------------------------

WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/machines", {"json": machine_body("kizomba", flavor="Kizomba")}),
    (
        "POST",
        "/api/machines/import",
        {"content": b"<x/>", "headers": {"Content-Type": "application/xml"}},
    ),
    ("PUT", "/api/machines/salsa", {"json": machine_body("salsa", flavor="Salsa")}),
    ("POST", "/api/machines/salsa/rollback", {"json": {"version": 1}}),
    ("POST", "/api/machines/salsa/instruments", {"json": instrument_body()}),
    ("PUT", "/api/machines/salsa/instruments/clave", {"json": instrument_body("clave")}),
    ("DELETE", "/api/machines/salsa/instruments/clave", {}),
]
WRITE_IDS = [
    "create",
    "import",
    "update",
    "rollback",
    "add-instrument",
    "replace-instrument",
    "remove-instrument",
]


def _request(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    options: dict[str, Any],
    headers: dict[str, str],
) -> Any:
    return client.request(
        method,
        path,
        headers={**options.get("headers", {}), **headers},
        **{k: v for k, v in options.items() if k != "headers"},
    )


@pytest.mark.parametrize(("method", "path", "options"), WRITES, ids=WRITE_IDS)
async def test_non_admin_write_is_unauthorized(
    client: httpx.AsyncClient,
    salsa: dict[str, Any],
    db: AsyncSession,
    method: str,
    path: str,
    options: dict[str, Any],
) -> None:
    dancer = await register(client)

    response = await _request(client, method, path, options, dancer.headers)

    assert_error(response, 403, "UNAUTHORIZED")
    assert await stored_versions(db, "salsa") == [1]
    assert await stored_machine_ids(db) == ["salsa"]


@pytest.mark.parametrize(("method", "path", "options"), WRITES, ids=WRITE_IDS)
async def test_anonymous_write_needs_authentication(
    client: httpx.AsyncClient,
    salsa: dict[str, Any],
    db: AsyncSession,
    method: str,
    path: str,
    options: dict[str, Any],
) -> None:
    response = await _request(client, method, path, options, {})

    assert_error(response, 401, "AUTH_REQUIRED")
    assert await stored_versions(db, "salsa") == [1]
    assert await stored_machine_ids(db) == ["salsa"]
