"""Integers from paths, queries and bodies are bounded to what an INTEGER column holds
(32-bit signed) or tighter: a huge number is a 422 on every back end, never a database
error, and the OpenAPI document says so for every integer the API takes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from beatmachine.core.schemas import INT32_MAX, INT32_MIN
from tests.factories import ADMIN_OVERRIDES, Account, assert_error, register_admin
from tests.machines.helpers import XML_HEADERS, machine_body, machine_xml
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern

PAST_INT32 = INT32_MAX + 1
HUGE = 10**30


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, **ADMIN_OVERRIDES}


@pytest.fixture
async def pattern(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def _integer_schemas(
    document: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]
) -> list[tuple[str, dict[str, Any]]]:
    """Every integer schema inside `schema`, with where it sits."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return []
        seen = seen | {schema["$ref"]}
    schema = _resolve(document, schema)
    found = [(where, schema)] if schema.get("type") == "integer" else []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _integer_schemas(document, option, where, seen)
    for name, child in schema.get("properties", {}).items():
        found += _integer_schemas(document, child, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        found += _integer_schemas(document, schema["items"], f"{where}[]", seen)
    return found


async def test_every_integer_the_api_takes_is_bounded_to_32_bits(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/api/openapi.json")).json()
    integers = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                where = f"{label} {parameter['in']} {parameter['name']}"
                integers += _integer_schemas(document, parameter["schema"], where, set())
            for media in operation.get("requestBody", {}).get("content", {}).values():
                integers += _integer_schemas(document, media["schema"], f"{label} body", set())
    assert integers, "the API takes no integer at all?"
    unbounded = [
        where
        for where, schema in integers
        if not (
            INT32_MIN <= schema.get("minimum", schema.get("exclusiveMinimum", HUGE)) <= INT32_MAX
            and INT32_MIN
            <= schema.get("maximum", schema.get("exclusiveMaximum", HUGE))
            <= INT32_MAX
        )
    ]
    assert unbounded == []


async def test_pattern_version_past_32_bits_in_the_path_is_a_validation_error(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    response = await client.get(
        f"/api/patterns/{pattern['id']}/versions/{HUGE}", headers=owner.headers
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [field["field"] for field in error["details"]["fields"]] == ["path.version"]


async def test_restoring_a_version_past_32_bits_is_a_validation_error(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    response = await client.post(
        f"/api/patterns/{pattern['id']}/versions/{PAST_INT32}/restore", headers=owner.headers
    )

    assert_error(response, 422, "VALIDATION_ERROR")


async def test_largest_32_bit_pattern_version_is_simply_not_found(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    response = await client.get(
        f"/api/patterns/{pattern['id']}/versions/{INT32_MAX}", headers=owner.headers
    )

    assert_error(response, 404, "PATTERN_VERSION_NOT_FOUND")


async def test_version_past_32_bits_in_a_diff_query_is_a_validation_error(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    response = await client.get(
        f"/api/patterns/{pattern['id']}/versions/diff",
        params={"from": 1, "to": PAST_INT32},
        headers=owner.headers,
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [field["field"] for field in error["details"]["fields"]] == ["query.to"]


async def test_machine_version_past_32_bits_in_the_path_is_a_validation_error_anonymously(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/api/machines/salsa/versions/{HUGE}")

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [field["field"] for field in error["details"]["fields"]] == ["path.version"]


async def test_largest_32_bit_machine_version_is_simply_not_found(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/api/machines/salsa/versions/{INT32_MAX}")

    assert_error(response, 404, "MACHINE_VERSION_NOT_FOUND")


async def test_rollback_to_a_version_past_32_bits_is_a_validation_error(
    client: httpx.AsyncClient,
) -> None:
    admin = await register_admin(client)

    response = await client.post(
        "/api/machines/salsa/rollback", json={"version": HUGE}, headers=admin.headers
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [field["field"] for field in error["details"]["fields"]] == ["version"]


@pytest.mark.parametrize("field", ["machineVersion", "autoControlInterval"])
async def test_machine_with_a_number_past_32_bits_is_a_validation_error(
    client: httpx.AsyncClient, field: str
) -> None:
    admin = await register_admin(client)

    response = await client.post(
        "/api/machines", json=machine_body(**{field: 2**70}), headers=admin.headers
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [item["field"] for item in error["details"]["fields"]] == [field]


async def test_note_index_past_32_bits_is_a_validation_error(client: httpx.AsyncClient) -> None:
    admin = await register_admin(client)
    body = machine_body()
    body["instruments"][0]["programs"][0]["notes"] = [{"index": HUGE, "pitch": 0}]

    response = await client.post("/api/machines", json=body, headers=admin.headers)

    assert_error(response, 422, "VALIDATION_ERROR")


async def test_imported_machine_xml_with_a_number_past_32_bits_is_a_validation_error(
    client: httpx.AsyncClient,
) -> None:
    admin = await register_admin(client)
    data = machine_xml(
        machine_fields=f"<bm:flavor>Test</bm:flavor><bm:machineVersion>{2**70}</bm:machineVersion>"
    )

    response = await client.post(
        "/api/machines/import", content=data, headers={**admin.headers, **XML_HEADERS}
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [item["field"] for item in error["details"]["fields"]] == ["machineVersion"]


async def test_whole_number_written_with_a_fraction_is_taken_as_the_integer(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    # JSON Schema's `integer` is any number without a fraction: `150.0` is the integer 150.
    response = await client.put(
        f"/api/patterns/{pattern['id']}", json={"bpm": 150.0}, headers=owner.headers
    )

    assert response.status_code == 200, response.text
    stored = await client.get(f"/api/patterns/{pattern['id']}", headers=owner.headers)
    assert '"bpm":150,' in stored.text


async def test_number_with_a_fraction_is_refused_where_an_integer_is_due(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    response = await client.put(
        f"/api/patterns/{pattern['id']}", json={"bpm": 150.5}, headers=owner.headers
    )

    assert_error(response, 422, "VALIDATION_ERROR")
    assert response.json()["error"]["details"]["fields"][0]["field"] == "bpm"
