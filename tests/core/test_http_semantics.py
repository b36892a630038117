"""HTTP as RFC 9110 has it: HEAD wherever GET is, `Allow` naming every method of a path,
answers that hold tokens or private data kept out of caches, and refused CORS preflights
answered with the error envelope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import ADMIN_OVERRIDES, Account, assert_error, register_admin
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern

APP_ORIGIN = "http://localhost:3009"
OTHER_ORIGIN = "https://evil.example"
SAME_AS_GET = ("etag", "cache-control", "content-type", "content-length", "content-encoding")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, **ADMIN_OVERRIDES}


def same_headers(get: httpx.Response, head: httpx.Response) -> dict[str, tuple[str, str]]:
    """The headers HEAD must share with GET where they differ: name -> (GET's, HEAD's)."""
    return {
        name: (get.headers.get(name, ""), head.headers.get(name, ""))
        for name in SAME_AS_GET
        if get.headers.get(name) != head.headers.get(name)
    }


# --- HEAD ----------------------------------------------------------------------------


async def test_head_of_a_get_route_answers_the_get_headers_without_a_body(
    client: httpx.AsyncClient,
) -> None:
    plain = {"Accept-Encoding": "identity"}
    get = await client.get("/api/machines/salsa", headers=plain)
    head = await client.head("/api/machines/salsa", headers=plain)

    assert head.status_code == get.status_code == 200
    assert same_headers(get, head) == {}
    assert head.headers["etag"]
    assert int(head.headers["content-length"]) == len(get.content) > 0
    assert head.content == b""


async def test_head_with_a_matching_etag_is_not_modified(client: httpx.AsyncClient) -> None:
    etag = (await client.get("/api/machines/salsa")).headers["etag"]

    head = await client.head("/api/machines/salsa", headers={"If-None-Match": etag})

    assert head.status_code == 304
    assert head.headers["etag"] == etag
    assert head.content == b""


async def test_head_of_a_compressed_answer_has_the_compressed_headers(
    client: httpx.AsyncClient,
) -> None:
    accept = {"Accept-Encoding": "br"}
    get = await client.get("/api/machines/salsa", headers=accept)
    head = await client.head("/api/machines/salsa", headers=accept)

    assert get.headers["content-encoding"] == "br"
    assert same_headers(get, head) == {}
    assert head.content == b""


async def test_head_of_a_route_that_answers_it_natively_has_no_body(
    client: httpx.AsyncClient,
) -> None:
    get = await client.get("/api/openapi.json")
    head = await client.head("/api/openapi.json")

    assert head.status_code == 200
    assert same_headers(get, head) == {}
    assert head.content == b""


async def test_head_of_a_missing_resource_is_its_404_without_a_body(
    client: httpx.AsyncClient,
) -> None:
    get = await client.get("/api/users/usr_missing")
    head = await client.head("/api/users/usr_missing")

    assert_error(get, 404, "USER_NOT_FOUND")
    assert head.status_code == 404
    assert same_headers(get, head) == {}
    assert head.content == b""


async def test_head_of_a_pattern_read_by_its_owner_is_not_stored(
    client: httpx.AsyncClient, owner: Account
) -> None:
    pattern = await create_pattern(client, owner, isPublic=False)

    head = await client.head(f"/api/patterns/{pattern['id']}", headers=owner.headers)

    assert head.status_code == 200
    assert "no-store" in head.headers["cache-control"]
    assert head.content == b""


async def test_head_on_a_path_without_get_is_method_not_allowed(
    client: httpx.AsyncClient,
) -> None:
    response = await client.head("/api/auth/login")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""


async def test_head_is_counted_as_head_under_its_route(client: httpx.AsyncClient) -> None:
    await client.head("/api/users/usr_missing")

    scraper = {"Authorization": "Bearer test-metrics-token"}
    text = (await client.get("/metrics", headers=scraper)).text

    assert 'method="HEAD",route="/api/users/{user_id}",status="404"' in text


# --- Allow -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/api/patterns/pat_missing", "GET, HEAD, PUT, DELETE"),
        ("DELETE", "/api/patterns", "GET, HEAD, POST"),
        ("GET", "/api/patterns/pat_missing/like", "POST, DELETE"),
        ("DELETE", "/api/users/me", "GET, HEAD, PUT"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
async def test_method_not_allowed_lists_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == allow


# --- Cache-Control of private answers -------------------------------------------------


async def test_registration_answer_with_tokens_is_not_stored(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        json={
            "email": "new@example.com",
            "password": "correct horse battery",
            "displayName": "New",
            "acceptTerms": True,
        },
    )

    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"


async def test_sign_in_answer_with_tokens_is_not_stored(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.post(
        "/api/auth/login", json={"email": owner.email, "password": owner.password}
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_token_refresh_answer_is_not_stored(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.post("/api/auth/refresh", json={"refreshToken": owner.refresh_token})

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "path", ["/api/users/me", "/api/auth/sessions", "/api/patterns/me", "/api/patterns/me/export"]
)
async def test_own_data_is_not_stored(client: httpx.AsyncClient, owner: Account, path: str) -> None:
    response = await client.get(path, headers=owner.headers)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_own_private_pattern_is_not_stored(client: httpx.AsyncClient, owner: Account) -> None:
    pattern = await create_pattern(client, owner, isPublic=False)

    response = await client.get(f"/api/patterns/{pattern['id']}", headers=owner.headers)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"


async def test_export_of_an_own_private_pattern_is_not_stored(
    client: httpx.AsyncClient, owner: Account
) -> None:
    pattern = await create_pattern(client, owner, isPublic=False)

    response = await client.get(
        f"/api/patterns/{pattern['id']}/export", params={"format": "xml"}, headers=owner.headers
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_admin_answers_are_not_stored(client: httpx.AsyncClient) -> None:
    admin = await register_admin(client)

    response = await client.get("/api/admin/jobs", headers=admin.headers)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_anonymous_read_of_a_public_pattern_keeps_its_cache_policy(
    client: httpx.AsyncClient, owner: Account
) -> None:
    pattern = await create_pattern(client, owner, isPublic=True)

    response = await client.get(f"/api/patterns/{pattern['id']}")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=0, must-revalidate"


async def test_public_machine_read_with_a_token_keeps_its_cache_policy(
    client: httpx.AsyncClient, owner: Account
) -> None:
    response = await client.get("/api/machines/salsa", headers=owner.headers)

    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("public")


async def test_anonymous_public_listing_sets_no_cache_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/patterns")

    assert response.status_code == 200
    assert "cache-control" not in response.headers


# --- CORS preflights refused with the envelope ------------------------------------------


def preflight(
    origin: str = APP_ORIGIN, method: str = "POST", headers: str = "content-type"
) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_preflight_for_a_method_the_api_does_not_allow_is_a_400_envelope(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options("/api/auth/login", headers=preflight(method="TRACE"))

    error = assert_error(response, 400, "CORS_REQUEST_NOT_ALLOWED")
    assert error["details"] == {"refused": ["method"]}
    assert response.headers["content-type"] == "application/json"


async def test_preflight_for_a_header_the_api_does_not_allow_is_a_400_envelope(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/api/auth/login", headers=preflight(headers="content-type, x-secret-handshake")
    )

    error = assert_error(response, 400, "CORS_REQUEST_NOT_ALLOWED")
    assert error["details"] == {"refused": ["headers"]}


async def test_preflight_refused_for_origin_and_method_names_both(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/api/auth/login", headers=preflight(origin=OTHER_ORIGIN, method="TRACE")
    )

    error = assert_error(response, 403, "CORS_ORIGIN_NOT_ALLOWED")
    assert error["details"] == {"refused": ["origin", "method"]}
    assert "access-control-allow-origin" not in response.headers


async def test_refused_preflight_keeps_the_cors_headers(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/auth/login", headers=preflight(method="TRACE"))

    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "Origin" in response.headers["vary"]
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_allowed_preflight_is_unchanged(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/auth/login", headers=preflight())

    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
