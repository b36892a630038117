"""The OpenAPI document tells the truth: every status an operation can answer, the error
envelope for 422 as for every error, which operations need a token and which only take
one, and which fields may be null."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import Account, register

BEARER = {"HTTPBearer": []}
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every operation by its label, `GET /api/patterns`."""
    return {
        f"{method.upper()} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def error_schema(operation: dict[str, Any], status: str) -> Any:
    return operation["responses"][status]["content"]["application/json"]["schema"]


def properties(document: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = document["components"]["schemas"][name]["properties"]
    return props


def nullable(schema: dict[str, Any]) -> bool:
    return any(option.get("type") == "null" for option in schema.get("anyOf", []))


@pytest.mark.parametrize("status", ["422", "429", "500"])
async def test_every_operation_documents_the_envelope_for_statuses_any_can_answer(
    document: dict[str, Any], status: str
) -> None:
    wrong = {
        label: operation["responses"].get(status)
        for label, operation in operations(document).items()
        if status not in operation["responses"] or error_schema(operation, status) != ENVELOPE
    }
    assert wrong == {}


async def test_fastapi_validation_error_schemas_are_not_in_the_document(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


@pytest.mark.parametrize("status", ["413", "415"])
async def test_every_operation_that_takes_a_body_documents_refused_bodies(
    document: dict[str, Any], status: str
) -> None:
    body_operations = {
        label: operation
        for label, operation in operations(document).items()
        if label.split()[0] in ("POST", "PUT", "PATCH")
    }
    assert body_operations
    missing = [
        label
        for label, operation in body_operations.items()
        if status not in operation["responses"] or error_schema(operation, status) != ENVELOPE
    ]
    assert missing == []


async def test_reads_without_a_body_do_not_document_refused_bodies(
    document: dict[str, Any],
) -> None:
    assert "413" not in operations(document)["GET /api/patterns"]["responses"]


@pytest.mark.parametrize(
    "label",
    [
        "GET /api/patterns",
        "GET /api/patterns/{pattern_id}",
        "GET /api/patterns/{pattern_id}/export",
        "POST /api/patterns/{pattern_id}/play",
        "GET /api/users/{user_id}",
    ],
)
async def test_public_reads_take_the_token_as_optional(
    document: dict[str, Any], label: str
) -> None:
    operation = operations(document)[label]
    assert operation["security"] == [BEARER, {}]
    assert "401" in operation["responses"]


@pytest.mark.parametrize(
    "label", ["GET /api/users/me", "POST /api/patterns", "GET /api/admin/jobs"]
)
async def test_routes_for_signed_in_callers_require_the_token(
    document: dict[str, Any], label: str
) -> None:
    assert operations(document)[label]["security"] == [BEARER]


@pytest.mark.parametrize(
    "label",
    [
        "GET /api/machines",
        "GET /api/machines/{machine_id}",
        "GET /api/shared/{token}",
        "POST /api/auth/login",
        "POST /api/auth/register",
    ],
)
async def test_routes_without_auth_need_no_token(document: dict[str, Any], label: str) -> None:
    assert "security" not in operations(document)[label]
    assert "security" not in document


@pytest.mark.parametrize(
    "label",
    [
        "GET /api/machines",
        "GET /api/machines/{machine_id}",
        "GET /api/machines/{machine_id}.xml",
        "GET /api/machines/{machine_id}/versions/{version}",
        "GET /api/patterns/{pattern_id}",
    ],
)
async def test_reads_with_an_etag_document_not_modified(
    document: dict[str, Any], label: str
) -> None:
    assert "304" in operations(document)[label]["responses"]


async def test_pattern_export_documents_json_and_xml(document: dict[str, Any]) -> None:
    content = operations(document)["GET /api/patterns/{pattern_id}/export"]["responses"]["200"][
        "content"
    ]
    assert set(content) == {"application/json", "application/xml"}


@pytest.mark.parametrize("schema", ["PatternUpdate", "PreferencesUpdate"])
async def test_partial_updates_document_no_field_as_nullable(
    document: dict[str, Any], schema: str
) -> None:
    fields = properties(document, schema)
    assert fields
    assert [name for name, field in fields.items() if nullable(field) or "default" in field] == []


async def test_profile_update_documents_null_only_for_what_it_clears(
    document: dict[str, Any],
) -> None:
    fields = properties(document, "ProfileUpdate")
    assert {name for name, field in fields.items() if nullable(field)} == {"bio", "avatar"}


async def test_profile_fields_documented_nullable_are_cleared_by_null(
    client: httpx.AsyncClient,
) -> None:
    account: Account = await register(client)
    await client.put("/api/users/me", json={"bio": "Timbalero"}, headers=account.headers)

    response = await client.put(
        "/api/users/me", json={"bio": None, "avatar": None}, headers=account.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["bio"] is None
    assert response.json()["data"]["avatar"] is None


async def test_pattern_update_refuses_null_as_documented(client: httpx.AsyncClient) -> None:
    account: Account = await register(client)

    response = await client.put(
        "/api/patterns/pat_missing", json={"title": None}, headers=account.headers
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["field"] == "title"
