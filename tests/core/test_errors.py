"""The error envelope: every failure, from routing to crashes, answers the same shape."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.users.models import User
from tests.factories import assert_error, unique_email, validation_fields

MAX_BODY_BYTES = 512
SECRET_SQL = "SELECT secret FROM users WHERE password_hash = 'hunter2-hash'"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"MAX_BODY_BYTES": MAX_BODY_BYTES}


def registration(**changes: Any) -> dict[str, Any]:
    return {
        "email": unique_email(),
        "password": "correct horse battery",
        "displayName": "Dancer",
        "acceptTerms": True,
        **changes,
    }


async def user_count(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(User)) or 0)


async def test_unknown_api_route_gives_not_found_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/no-such-thing")
    error = assert_error(response, 404, "NOT_FOUND")
    assert "details" not in error


async def test_unknown_route_outside_api_gives_not_found_envelope(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/no-such-page")
    assert_error(response, 404, "NOT_FOUND")


async def test_wrong_method_gives_method_not_allowed_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/login")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"


async def test_body_over_limit_with_content_length_gives_payload_too_large(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    body = registration(displayName="x" * MAX_BODY_BYTES)
    response = await client.post("/api/auth/register", json=body)
    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"maxBytes": MAX_BODY_BYTES}
    assert await user_count(db) == 0


async def test_chunked_body_over_limit_gives_payload_too_large(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    payload = httpx.Request("POST", "/", json=registration(bio="x" * MAX_BODY_BYTES)).content

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 100):
            yield payload[start : start + 100]

    response = await client.post(
        "/api/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"maxBytes": MAX_BODY_BYTES}
    assert await user_count(db) == 0


async def test_chunked_body_under_limit_is_accepted(client: httpx.AsyncClient) -> None:
    payload = httpx.Request("POST", "/", json=registration()).content
    assert len(payload) < MAX_BODY_BYTES

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 16):
            yield payload[start : start + 16]

    response = await client.post(
        "/api/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_body_that_is_not_json_gives_unsupported_media_type(
    client: httpx.AsyncClient, db: AsyncSession, content_type: str
) -> None:
    response = await client.post(
        "/api/auth/register",
        content=b"email=a%40example.com&password=correct+horse+battery",
        headers={"Content-Type": content_type},
    )
    error = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["details"] == {"contentType": content_type}
    assert await user_count(db) == 0


async def test_body_without_content_type_gives_unsupported_media_type(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/login", content=b'{"email": "a@example.com"}')
    assert "content-type" not in response.request.headers
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_json_with_charset_parameter_is_accepted(client: httpx.AsyncClient) -> None:
    payload = httpx.Request("POST", "/", json=registration()).content
    response = await client.post(
        "/api/auth/register",
        content=payload,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


async def test_malformed_json_gives_validation_error_on_body(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await client.post(
        "/api/auth/register",
        content=b'{"email": "a@example.com", "password": ',
        headers={"Content-Type": "application/json"},
    )
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["field"] == "body"
    assert await user_count(db) == 0


async def test_invalid_fields_give_validation_error_naming_them(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    body = registration(email="not-an-email", password="short", acceptTerms=False)
    response = await client.post("/api/auth/register", json=body)
    assert validation_fields(response) == {"email", "password", "acceptTerms"}
    assert await user_count(db) == 0


async def test_missing_field_is_named_by_its_camel_case_name(client: httpx.AsyncClient) -> None:
    body = registration()
    del body["displayName"]
    response = await client.post("/api/auth/register", json=body)
    assert validation_fields(response) == {"displayName"}


async def test_validation_error_does_not_echo_the_input(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", json=registration(password="hunter2", email="leak-me")
    )
    assert_error(response, 422, "VALIDATION_ERROR")
    assert "hunter2" not in response.text
    assert "leak-me" not in response.text


def _sql_failure() -> Exception:
    return ProgrammingError(SECRET_SQL, {"password_hash": "hunter2-hash"}, Exception("boom"))


def _plain_failure() -> Exception:
    return RuntimeError("internal detail: secret at /etc/beatmachine/hunter2-hash")


@pytest.fixture(params=[_sql_failure, _plain_failure], ids=["sqlalchemy", "runtime"])
def exploding_app(app: FastAPI, request: pytest.FixtureRequest) -> FastAPI:
    """The app with a test-only route that fails unexpectedly."""
    make_error = request.param

    async def explode() -> dict[str, str]:
        raise make_error()

    app.add_api_route("/api/test-only/explode", explode, methods=["GET"])
    return app


async def test_unexpected_exception_gives_server_error_envelope(
    exploding_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/api/test-only/explode")
    error = assert_error(response, 500, "SERVER_ERROR")
    assert set(response.json()) == {"success", "error"}
    assert "details" not in error


async def test_server_error_leaks_no_traceback_exception_or_sql(
    exploding_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/api/test-only/explode")
    assert response.status_code == 500
    sent = response.text + "\n".join(response.headers.values())
    leaks = ("Traceback", 'File "', "SELECT", "secret", "hunter2", "boom")
    leaks += ("ProgrammingError", "RuntimeError", "sqlalchemy")
    for leak in leaks:
        assert leak not in sent, leak


async def test_server_error_carries_the_request_id(
    exploding_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/api/test-only/explode", headers={"X-Request-ID": "crash-42"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "crash-42"


async def test_server_error_gets_a_generated_request_id(
    exploding_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/api/test-only/explode")
    assert response.status_code == 500
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_server_error_is_readable_by_the_front_end_origin(
    exploding_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        "/api/test-only/explode", headers={"Origin": "http://localhost:3009"}
    )
    assert_error(response, 500, "SERVER_ERROR")
    assert response.headers["access-control-allow-origin"] == "http://localhost:3009"


async def test_server_error_carries_rate_limit_headers(
    exploding_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/api/test-only/explode")
    assert_error(response, 500, "SERVER_ERROR")
    assert int(response.headers["x-ratelimit-limit"]) >= 1
    assert "x-ratelimit-remaining" in response.headers
    assert "x-ratelimit-reset" in response.headers


async def test_nul_in_the_query_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/usr_1?x=a%00b")

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["field"] == "url"


async def test_nul_in_the_path_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/usr_%00")

    assert_error(response, 422, "VALIDATION_ERROR")


async def test_nul_in_a_json_string_is_a_validation_error_not_a_database_error(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/auth/login", json={"email": "dancer\u0000@example.com", "password": "whatever1"}
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert "NUL" in error["details"]["fields"][0]["message"]


# --- bodies the JSON parser cannot read --------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"email": "\xff\xfe@example.com", "password": "x"}', id="not-utf-8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deeply"),
        pytest.param(b'{"email": ' + b"9" * 5000 + b"}", id="huge-integer"),
    ],
)
@pytest.mark.parametrize("settings_overrides", [{"MAX_BODY_BYTES": 1_048_576}])
async def test_unreadable_json_body_is_a_validation_error_on_body(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await client.post(
        "/api/auth/login", content=body, headers={"Content-Type": "application/json"}
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"] == [
        {"field": "body", "message": "not valid JSON", "type": "json_invalid"}
    ]


async def test_lone_surrogate_in_a_json_string_is_a_validation_error_not_a_database_error(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/auth/login",
        content=b'{"email": "dancer\\ud800@example.com", "password": "whatever1"}',
        headers={"Content-Type": "application/json"},
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert "surrogate" in error["details"]["fields"][0]["message"]


# --- validation errors stay small and plain -----------------------------------------------


def unknown_keys(count: int, stem: str = "extra") -> dict[str, Any]:
    return {f"{stem}{index}": index for index in range(count)}


@pytest.mark.parametrize("settings_overrides", [{"MAX_BODY_BYTES": 1_048_576}])
async def test_validation_error_reports_twenty_fields_then_counts_the_rest(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/register", json={**registration(), **unknown_keys(500)})

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert len(error["details"]["fields"]) == 20
    assert error["details"]["moreFields"] == 480


@pytest.mark.parametrize("settings_overrides", [{"MAX_BODY_BYTES": 1_048_576}])
async def test_validation_error_for_many_unknown_keys_is_smaller_than_the_body(
    client: httpx.AsyncClient,
) -> None:
    body = {**registration(), **unknown_keys(20_000, stem="k")}

    response = await client.post("/api/auth/register", json=body)

    assert response.status_code == 422
    assert len(response.content) < 8_000
    assert len(response.content) < len(httpx.Request("POST", "/", json=body).content) / 10


@pytest.mark.parametrize(
    "key", ['<img src=x onerror="alert(1)">', "a&b", "it's", "line\nbreak", "\u2028", "a\\b"]
)
async def test_validation_error_never_echoes_markup_from_key_names(
    client: httpx.AsyncClient, key: str
) -> None:
    response = await client.post(
        "/api/auth/login", json={"email": "a@b.c", "password": "x", key: 1}
    )

    error = assert_error(response, 422, "VALIDATION_ERROR")
    [field] = error["details"]["fields"]
    assert not set(field["field"]) & set("<>&\"'\n\u2028")
    assert "<img" not in response.text


async def test_validation_error_shows_markup_in_key_names_escaped(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/auth/login", json={"email": "a@b.c", "password": "x", "<b>": 1}
    )

    [field] = assert_error(response, 422, "VALIDATION_ERROR")["details"]["fields"]
    assert field["field"] == "\\u003cb\\u003e"


@pytest.mark.parametrize("settings_overrides", [{"MAX_BODY_BYTES": 1_048_576}])
async def test_validation_error_cuts_a_long_field_name(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/login", json={"email": "a@b.c", "password": "x", "k" * 10_000: 1}
    )

    [field] = assert_error(response, 422, "VALIDATION_ERROR")["details"]["fields"]
    assert len(field["field"]) == 120
    assert field["field"].endswith("\u2026")
