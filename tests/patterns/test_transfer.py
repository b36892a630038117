"""Export and import of patterns: the versioned JSON file, the front end's machine XML,
the bundle of one's own patterns, and the refusals of import (nothing stored)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.machines.bootstrap import DEFAULTS_DIR
from beatmachine.machines.document import MachineDocument
from beatmachine.machines.xml import parse_machine_xml
from beatmachine.patterns.models import Pattern
from tests.factories import Account, assert_error
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern

MIB = 1024 * 1024
SALSA_INSTRUMENTS = [
    "clave", "cowbell", "congas", "bongos", "guiro", "maracas", "timbales", "bass", "piano",
]  # fmt: skip

SALSA_CONFIGURATION: dict[str, Any] = {
    "instruments": [
        {"id": "clave", "enabled": True, "activeProgram": 3, "volume": 0.25, "pitchOffset": -2},
        {"id": "congas", "enabled": False, "activeProgram": 2, "volume": 0.5, "pitchOffset": 4},
        {"id": "piano", "enabled": True, "activeProgram": 1, "volume": 1.0, "pitchOffset": 12},
    ]
}
MERENGUE_CONFIGURATION: dict[str, Any] = {
    "instruments": [
        {"id": "tambora", "enabled": True, "activeProgram": 2, "volume": 0.75, "pitchOffset": 0},
        {"id": "guira", "enabled": False, "activeProgram": 1, "volume": 0.5, "pitchOffset": 1},
    ]
}
PATTERN_STATE: dict[str, Any] = {
    "title": "Montuno for Practice",
    "description": "Clave on 3, piano up an octave",
    "flavor": "Salsa",
    "bpm": 196,
    "keyNote": 9,
    "isPublic": True,
    "configuration": SALSA_CONFIGURATION,
}
CREATED_KEYS = {
    "id", "title", "description", "flavor", "bpm", "keyNote", "isPublic", "shareUrl", "createdAt",
}  # fmt: skip

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<bm:Machine xmlns:bm="http://www.salsabeatmachine.org/xns/bm">
  <bm:flavor>Salsa</bm:flavor>
  <bm:description>&lol9;</bm:description>
</bm:Machine>
"""


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(PATTERN_OVERRIDES)


@pytest.fixture
async def public(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, **PATTERN_STATE)


@pytest.fixture
async def private(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, **{**PATTERN_STATE, "isPublic": False})


def export_file(**pattern: Any) -> dict[str, Any]:
    """A version 1 pattern file written by hand; keyword arguments replace pattern fields."""
    return {
        "format": "beatmachine.pattern",
        "formatVersion": 1,
        "exportedAt": "2026-11-20T10:00:00.000Z",
        "sourceId": "pat_0123456789abcdef",
        "machine": {"id": "salsa", "version": 1},
        "pattern": {**copy.deepcopy(PATTERN_STATE), **pattern},
    }


async def export(
    client: httpx.AsyncClient, pattern_id: str, account: Account | None, **params: str
) -> httpx.Response:
    headers = account.headers if account else {}
    return await client.get(f"/api/patterns/{pattern_id}/export", params=params, headers=headers)


async def import_json(
    client: httpx.AsyncClient, account: Account, content: dict[str, Any]
) -> httpx.Response:
    return await client.post("/api/patterns/import", json=content, headers=account.headers)


async def import_xml(
    client: httpx.AsyncClient,
    account: Account,
    content: bytes,
    *,
    content_type: str = "application/xml",
    **params: str,
) -> httpx.Response:
    return await client.post(
        "/api/patterns/import",
        content=content,
        params=params,
        headers={**account.headers, "Content-Type": content_type},
    )


async def full_pattern(
    client: httpx.AsyncClient, pattern_id: str, account: Account
) -> dict[str, Any]:
    response = await client.get(f"/api/patterns/{pattern_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def pattern_count(db: AsyncSession) -> int:
    count = (await db.execute(select(func.count()).select_from(Pattern))).scalar_one()
    await db.commit()
    return int(count)


def settings_by_id(document: MachineDocument) -> dict[str, dict[str, Any]]:
    return {
        i.id: {
            "id": i.id,
            "enabled": i.enabled,
            "activeProgram": i.active_program,
            "volume": i.volume,
            "pitchOffset": i.pitch_offset,
        }
        for i in document.instruments
    }


# --- JSON export --------------------------------------------------------------------------


async def test_export_is_a_versioned_pattern_file(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    stored = await full_pattern(client, public["id"], owner)

    response = await export(client, public["id"], owner, format="json")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{public["id"]}.json"'
    )
    body = response.json()
    assert set(body) == {"format", "formatVersion", "exportedAt", "sourceId", "machine", "pattern"}
    assert body["format"] == "beatmachine.pattern"
    assert body["formatVersion"] == 1
    assert body["exportedAt"].endswith("Z")
    assert body["sourceId"] == public["id"]
    assert body["machine"] == {"id": stored["machineId"], "version": stored["machineVersion"]}
    assert body["machine"]["id"] == "salsa"
    assert body["pattern"] == PATTERN_STATE


async def test_export_format_defaults_to_json(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    default = await export(client, public["id"], owner)
    explicit = await export(client, public["id"], owner, format="json")

    assert default.status_code == 200, default.text
    assert default.headers["content-disposition"] == explicit.headers["content-disposition"]
    assert {**default.json(), "exportedAt": None} == {**explicit.json(), "exportedAt": None}


async def test_export_of_a_public_pattern_needs_no_account(
    client: httpx.AsyncClient, public: dict[str, Any]
) -> None:
    response = await export(client, public["id"], None)

    assert response.status_code == 200, response.text
    assert response.json()["pattern"] == PATTERN_STATE


async def test_export_of_own_private_pattern(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any]
) -> None:
    response = await export(client, private["id"], owner)

    assert response.status_code == 200, response.text
    assert response.json()["pattern"] == {**PATTERN_STATE, "isPublic": False}


@pytest.mark.parametrize("export_format", ["json", "xml"])
async def test_export_of_someone_elses_private_pattern_is_not_found(
    client: httpx.AsyncClient, stranger: Account, private: dict[str, Any], export_format: str
) -> None:
    response = await export(client, private["id"], stranger, format=export_format)

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert PATTERN_STATE["title"] not in response.text


async def test_anonymous_export_of_a_private_pattern_is_not_found(
    client: httpx.AsyncClient, private: dict[str, Any]
) -> None:
    response = await export(client, private["id"], None)

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_export_in_an_unknown_format_is_a_validation_error(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    response = await export(client, public["id"], owner, format="csv")

    assert_error(response, 422, "VALIDATION_ERROR")


async def test_export_of_a_deleted_pattern_is_not_found(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    response = await export(client, public["id"], owner)

    assert_error(response, 404, "PATTERN_NOT_FOUND")


# --- JSON import --------------------------------------------------------------------------


async def test_import_of_an_export_creates_a_new_pattern_for_the_caller(
    client: httpx.AsyncClient, owner: Account, stranger: Account, public: dict[str, Any]
) -> None:
    exported = (await export(client, public["id"], owner)).json()

    response = await import_json(client, stranger, exported)

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert set(data) == CREATED_KEYS
    assert data["id"].startswith("pat_")
    assert data["id"] != public["id"]
    imported = await full_pattern(client, data["id"], stranger)
    assert imported["author"]["id"] == stranger.id
    assert imported["version"] == 1
    assert imported["stats"]["plays"] == imported["stats"]["likes"] == 0


async def test_import_round_trip_keeps_the_content(
    client: httpx.AsyncClient, owner: Account, stranger: Account, public: dict[str, Any]
) -> None:
    exported = (await export(client, public["id"], owner)).json()

    created = (await import_json(client, stranger, exported)).json()["data"]
    again = (await export(client, created["id"], stranger)).json()

    assert again["pattern"] == exported["pattern"] == PATTERN_STATE
    assert again["sourceId"] == created["id"]
    assert again["machine"] == exported["machine"]


async def test_import_of_own_export_adds_a_copy(
    client: httpx.AsyncClient, owner: Account, private: dict[str, Any], db: AsyncSession
) -> None:
    exported = (await export(client, private["id"], owner)).json()

    response = await import_json(client, owner, exported)

    assert response.status_code == 201, response.text
    assert response.json()["data"]["isPublic"] is False
    assert await pattern_count(db) == 2
    assert (await full_pattern(client, private["id"], owner))["title"] == PATTERN_STATE["title"]


async def test_import_of_a_hand_written_file(client: httpx.AsyncClient, owner: Account) -> None:
    file = export_file(title="Hand made", flavor="Merengue", configuration=MERENGUE_CONFIGURATION)
    del file["machine"], file["exportedAt"], file["sourceId"]

    response = await import_json(client, owner, file)

    assert response.status_code == 201, response.text
    imported = await full_pattern(client, response.json()["data"]["id"], owner)
    assert imported["title"] == "Hand made"
    assert imported["flavor"] == "Merengue"
    assert imported["machineId"] == "merengue"
    assert imported["configuration"] == MERENGUE_CONFIGURATION


async def test_import_json_takes_the_title_from_the_query(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.post(
        "/api/patterns/import",
        params={"title": "Renamed on import"},
        json=export_file(),
        headers=owner.headers,
    )

    assert response.status_code == 201, response.text
    imported = await full_pattern(client, response.json()["data"]["id"], owner)
    assert imported["title"] == "Renamed on import"
    assert imported["configuration"] == SALSA_CONFIGURATION


@pytest.mark.parametrize("field", ["title", "description"])
async def test_text_that_xml_cannot_hold_is_refused_so_every_pattern_exports(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession, field: str
) -> None:
    body = {**PATTERN_STATE, field: "Mambo\x0bsection"}

    response = await client.post("/api/patterns", json=body, headers=owner.headers)

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [item["field"] for item in error["details"]["fields"]] == [field]
    assert await pattern_count(db) == 0


async def test_update_with_text_that_xml_cannot_hold_is_refused(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    response = await client.put(
        f"/api/patterns/{public['id']}", json={"title": "Esc\x1bape"}, headers=owner.headers
    )

    assert_error(response, 422, "VALIDATION_ERROR")
    exported = await export(client, public["id"], owner, format="xml")
    assert parse_machine_xml(exported.content).title == PATTERN_STATE["title"]


async def test_xml_export_keeps_markup_characters_of_the_title(
    client: httpx.AsyncClient, owner: Account
) -> None:
    title = 'Salsa & Son <3 "live"'
    created = await create_pattern(client, owner, **{**PATTERN_STATE, "title": title})

    exported = await export(client, created["id"], owner, format="xml")
    imported = await import_xml(client, owner, exported.content)

    assert parse_machine_xml(exported.content).title == title
    assert imported.status_code == 201, imported.text
    assert imported.json()["data"]["title"] == title


# --- machine XML --------------------------------------------------------------------------


async def test_export_as_machine_xml(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    response = await export(client, public["id"], owner, format="xml")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert response.headers["content-disposition"] == f'attachment; filename="{public["id"]}.xml"'
    document = parse_machine_xml(response.content)
    assert document.flavor == "Salsa"
    assert document.bpm == 196
    assert document.key_note == 9
    assert document.title == PATTERN_STATE["title"]
    settings = settings_by_id(document)
    for instrument in SALSA_CONFIGURATION["instruments"]:
        assert settings[instrument["id"]] == instrument


async def test_export_as_xml_switches_off_instruments_not_in_the_pattern(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    response = await export(client, public["id"], owner, format="xml")

    document = parse_machine_xml(response.content)
    in_pattern = {i["id"] for i in SALSA_CONFIGURATION["instruments"]}
    assert [i.id for i in document.instruments] == SALSA_INSTRUMENTS
    assert {i.id for i in document.instruments if i.id not in in_pattern and i.enabled} == set()
    assert all(len(i.programs) > 0 for i in document.instruments)


@pytest.mark.parametrize(
    ("flavor", "configuration"),
    [("Salsa", SALSA_CONFIGURATION), ("Merengue", MERENGUE_CONFIGURATION)],
)
async def test_import_of_exported_xml_creates_an_equivalent_pattern(
    client: httpx.AsyncClient,
    owner: Account,
    stranger: Account,
    flavor: str,
    configuration: dict[str, Any],
) -> None:
    original = await create_pattern(
        client, owner, **{**PATTERN_STATE, "flavor": flavor, "configuration": configuration}
    )
    xml = (await export(client, original["id"], owner, format="xml")).content

    response = await import_xml(client, stranger, xml)

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["id"] != original["id"]
    imported = await full_pattern(client, data["id"], stranger)
    assert imported["author"]["id"] == stranger.id
    assert imported["title"] == PATTERN_STATE["title"]
    assert imported["description"] == PATTERN_STATE["description"]
    assert (imported["flavor"], imported["bpm"], imported["keyNote"]) == (flavor, 196, 9)
    assert imported["isPublic"] is False
    chosen = {i["id"]: i for i in configuration["instruments"]}
    for instrument in imported["configuration"]["instruments"]:
        if instrument["id"] in chosen:
            assert instrument == chosen[instrument["id"]]
        else:
            assert instrument["enabled"] is False
    assert chosen.keys() <= {i["id"] for i in imported["configuration"]["instruments"]}


async def test_import_xml_takes_the_title_from_the_query(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any]
) -> None:
    xml = (await export(client, public["id"], owner, format="xml")).content

    response = await import_xml(client, owner, xml, title="Renamed on import")

    assert response.status_code == 201, response.text
    assert response.json()["data"]["title"] == "Renamed on import"


async def test_import_of_the_front_ends_own_machine_file(
    client: httpx.AsyncClient, owner: Account
) -> None:
    xml = (DEFAULTS_DIR / "salsa.xml").read_bytes()
    machine = parse_machine_xml(xml)

    response = await import_xml(client, owner, xml, content_type="text/xml")

    assert response.status_code == 201, response.text
    imported = await full_pattern(client, response.json()["data"]["id"], owner)
    assert (imported["flavor"], imported["bpm"], imported["keyNote"]) == ("Salsa", 180, 0)
    assert imported["configuration"]["instruments"] == list(settings_by_id(machine).values())


# --- bundle of one's own patterns ---------------------------------------------------------


async def test_export_of_own_patterns_is_a_bundle_with_the_private_ones(
    client: httpx.AsyncClient,
    owner: Account,
    stranger: Account,
    public: dict[str, Any],
    private: dict[str, Any],
) -> None:
    await create_pattern(client, stranger, title="Not mine", isPublic=True)

    response = await client.get("/api/patterns/me/export", headers=owner.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment;")
    body = response.json()
    assert set(body) == {"format", "formatVersion", "exportedAt", "patterns"}
    assert body["format"] == "beatmachine.patterns"
    assert body["formatVersion"] == 1
    assert [p["sourceId"] for p in body["patterns"]] == [public["id"], private["id"]]
    assert [p["pattern"]["isPublic"] for p in body["patterns"]] == [True, False]
    for item in body["patterns"]:
        assert item["format"] == "beatmachine.pattern"
        assert item["formatVersion"] == 1
        assert item["pattern"]["configuration"] == SALSA_CONFIGURATION


async def test_bundle_leaves_out_deleted_patterns(
    client: httpx.AsyncClient, owner: Account, public: dict[str, Any], private: dict[str, Any]
) -> None:
    await client.delete(f"/api/patterns/{public['id']}", headers=owner.headers)

    response = await client.get("/api/patterns/me/export", headers=owner.headers)

    assert [p["sourceId"] for p in response.json()["patterns"]] == [private["id"]]


async def test_bundle_of_someone_without_patterns_is_empty(
    client: httpx.AsyncClient, stranger: Account, public: dict[str, Any]
) -> None:
    response = await client.get("/api/patterns/me/export", headers=stranger.headers)

    assert response.status_code == 200, response.text
    assert response.json()["patterns"] == []


async def test_bundle_export_needs_an_account(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/patterns/me/export")

    assert_error(response, 401, "AUTH_REQUIRED")


# --- refusals: 422 and nothing stored -----------------------------------------------------


def _wrong_flavor_instrument() -> tuple[bytes, str]:
    # Merengue has no clave: a file whose configuration belongs to another flavor.
    return orjson.dumps(export_file(flavor="Merengue")), "application/json"


def _bachata_xml() -> tuple[bytes, str]:
    xml = (DEFAULTS_DIR / "salsa.xml").read_bytes()
    assert b"<bm:flavor>Salsa</bm:flavor>" in xml
    return xml.replace(b"<bm:flavor>Salsa</bm:flavor>", b"<bm:flavor>Bachata</bm:flavor>"), (
        "application/xml"
    )


REFUSALS: dict[str, tuple[Callable[[], tuple[bytes, str]], str, str | None]] = {
    # name: (body and content type, words in the message, field named in details)
    "malformed json": (
        lambda: (b'{"format": "beatmachine.pattern", "formatVersion": 1,', "application/json"),
        "not valid JSON",
        None,
    ),
    "json of another format": (
        lambda: (
            orjson.dumps({"format": "beatmachine.patterns", "formatVersion": 1, "patterns": []}),
            "application/json",
        ),
        "Not a pattern file",
        None,
    ),
    "json that is not an object": (
        lambda: (orjson.dumps([export_file()]), "application/json"),
        "Not a pattern file",
        None,
    ),
    "format version 2": (
        lambda: (orjson.dumps({**export_file(), "formatVersion": 2}), "application/json"),
        "formatVersion",
        None,
    ),
    "invalid pattern in the file": (
        lambda: (orjson.dumps(export_file(bpm=400)), "application/json"),
        "not valid",
        "pattern.bpm",
    ),
    "instrument of the wrong flavor": (
        _wrong_flavor_instrument,
        "does not fit the Merengue machine",
        "configuration.instruments.0.id",
    ),
    "xml with a billion laughs dtd": (
        lambda: (BILLION_LAUGHS, "application/xml"),
        "unsafe XML",
        None,
    ),
    "xml not well-formed": (
        lambda: (
            b"<bm:Machine xmlns:bm='http://www.salsabeatmachine.org/xns/bm'><bm:flavor>",
            "application/xml",
        ),
        "not well-formed",
        None,
    ),
    "xml that is not a machine": (
        lambda: (b"<html><body>hello</body></html>", "application/xml"),
        "bm:Machine",
        None,
    ),
    "xml of an unknown flavor": (_bachata_xml, "No machine plays the flavor 'Bachata'", "flavor"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_import_refuses_a_bad_file_and_stores_nothing(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession, case: str
) -> None:
    make_body, words, field = REFUSALS[case]
    content, content_type = make_body()

    response = await client.post(
        "/api/patterns/import",
        content=content,
        headers={**owner.headers, "Content-Type": content_type},
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert words in error["message"]
    if field is not None:
        assert field in {item["field"] for item in error["details"]["fields"]}
    assert await pattern_count(db) == 0


async def test_import_over_the_body_limit_is_too_large_and_stores_nothing(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    content = orjson.dumps({**export_file(), "padding": "x" * (MIB + 1)})

    response = await client.post(
        "/api/patterns/import",
        content=content,
        headers={**owner.headers, "Content-Type": "application/json"},
    )

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await pattern_count(db) == 0


class TestImportLimitBeyondALargerBodyLimit:
    """With a body limit raised above 1 MiB, the import still takes no file over 1 MiB."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {**PATTERN_OVERRIDES, "MAX_BODY_BYTES": 4 * MIB}

    async def test_import_of_a_file_over_1_mib_is_refused_and_stores_nothing(
        self, client: httpx.AsyncClient, owner: Account, db: AsyncSession
    ) -> None:
        content = orjson.dumps(export_file(description="x" * (MIB + 1)))

        response = await client.post(
            "/api/patterns/import",
            content=content,
            headers={**owner.headers, "Content-Type": "application/json"},
        )

        error = assert_error(response, 422, "VALIDATION_ERROR")
        assert "larger than" in error["message"]
        assert await pattern_count(db) == 0


async def test_import_as_plain_text_is_an_unsupported_media_type(
    client: httpx.AsyncClient, owner: Account, db: AsyncSession
) -> None:
    response = await client.post(
        "/api/patterns/import",
        content=orjson.dumps(export_file()),
        headers={**owner.headers, "Content-Type": "text/plain"},
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await pattern_count(db) == 0


async def test_import_needs_an_account(client: httpx.AsyncClient, db: AsyncSession) -> None:
    response = await client.post("/api/patterns/import", json=export_file())

    assert_error(response, 401, "AUTH_REQUIRED")
    assert await pattern_count(db) == 0


class TestImportCountsAsPatternCreation:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {**PATTERN_OVERRIDES, "RATE_LIMIT_PATTERN_CREATE": 1}

    async def test_import_over_the_creation_limit_is_refused_and_stores_nothing(
        self, client: httpx.AsyncClient, owner: Account, db: AsyncSession
    ) -> None:
        first = await import_json(client, owner, export_file())
        assert first.status_code == 201, first.text

        response = await import_json(client, owner, export_file())

        assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
        assert response.headers["retry-after"].isdigit()
        assert await pattern_count(db) == 1
