"""Request ids, security headers, CORS and compression on every response."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import brotli
import httpx
import pytest

from beatmachine.app import EXPOSED_HEADERS
from tests.core.apps import serve, standalone_settings
from tests.factories import assert_error

APP_ORIGIN = "http://localhost:3009"
OTHER_ORIGIN = "https://evil.example"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


# --- request id -------------------------------------------------------------


async def test_sane_incoming_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.9:2_x"})
    assert response.headers["x-request-id"] == "lb-7f3a.9:2_x"


async def test_missing_request_id_is_generated(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert GENERATED_ID.fullmatch(first.headers["x-request-id"])
    assert GENERATED_ID.fullmatch(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "incoming",
    ["a" * 129, "id with spaces", "<script>alert(1)</script>", "id\tx", "ünïcode"],
    ids=["too-long", "spaces", "markup", "tab", "non-ascii"],
)
async def test_insane_request_id_is_replaced(client: httpx.AsyncClient, incoming: str) -> None:
    response = await client.get("/healthz", headers={b"X-Request-ID": incoming.encode()})
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


async def test_request_id_is_on_error_responses(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/no-such-thing", headers={"X-Request-ID": "req-404"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "req-404"


# --- security headers ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/api/users/me", "/api/no-such-thing"])
async def test_responses_carry_security_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )


async def test_docs_page_gets_a_csp_that_lets_it_load_but_not_be_framed(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/docs")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src" in csp
    assert response.headers["x-frame-options"] == "DENY"


# --- CORS -------------------------------------------------------------------------


def preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }


async def test_preflight_from_app_origin_is_allowed(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/auth/login", headers=preflight_headers(APP_ORIGIN))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers


async def test_cross_origin_response_exposes_request_id_and_rate_limit_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/users/me", headers={"Origin": APP_ORIGIN})
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = {
        name.strip().lower()
        for name in response.headers["access-control-expose-headers"].split(",")
    }
    assert {
        "x-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
    } <= exposed
    assert exposed == {name.lower() for name in EXPOSED_HEADERS}


async def test_preflight_from_other_origin_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/auth/login", headers=preflight_headers(OTHER_ORIGIN))
    error = assert_error(response, 403, "CORS_ORIGIN_NOT_ALLOWED")
    assert error["details"] == {"refused": ["origin"]}
    assert "access-control-allow-origin" not in response.headers


async def test_request_from_other_origin_gets_no_cors_grant(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/me", headers={"Origin": OTHER_ORIGIN})
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers


async def test_cors_origins_setting_replaces_app_url(tmp_path: Path) -> None:
    settings = standalone_settings(
        tmp_path, CORS_ORIGINS="https://beat.salsanor.no, https://admin.salsanor.no"
    )
    async with serve(settings) as client:
        allowed = await client.options(
            "/api/auth/login", headers=preflight_headers("https://admin.salsanor.no")
        )
        app_url = await client.options("/api/auth/login", headers=preflight_headers(APP_ORIGIN))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://admin.salsanor.no"
    assert_error(app_url, 403, "CORS_ORIGIN_NOT_ALLOWED")
    assert "access-control-allow-origin" not in app_url.headers


# --- compression ------------------------------------------------------------------


async def fetch_raw(
    client: httpx.AsyncClient, path: str, accept: str
) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent on the wire (not decoded)."""
    async with client.stream("GET", path, headers={"Accept-Encoding": accept}) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, raw


async def test_large_response_is_brotli_compressed_when_accepted(
    client: httpx.AsyncClient,
) -> None:
    response, raw = await fetch_raw(client, "/api/openapi.json", "br")
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "br"
    decoded = brotli.decompress(raw)
    assert len(raw) < len(decoded)
    assert json.loads(decoded)["info"]["title"] == "Beat Machine API"


async def test_large_response_is_gzip_compressed_when_only_gzip_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    response, raw = await fetch_raw(client, "/api/openapi.json", "gzip")
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    decoded = gzip.decompress(raw)
    assert len(raw) < len(decoded)
    assert json.loads(decoded)["info"]["title"] == "Beat Machine API"


async def test_large_response_is_not_compressed_without_accept_encoding(
    client: httpx.AsyncClient,
) -> None:
    response, raw = await fetch_raw(client, "/api/openapi.json", "identity")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert json.loads(raw)["info"]["title"] == "Beat Machine API"


async def test_small_response_is_not_compressed(client: httpx.AsyncClient) -> None:
    response, raw = await fetch_raw(client, "/healthz", "br, gzip")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert json.loads(raw) == {"success": True, "data": {"status": "ok"}}
