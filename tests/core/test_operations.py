"""Operations endpoints: readiness when a dependency is down, Prometheus metrics (to the
scraper holding `METRICS_TOKEN` only)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from beatmachine.core.config import Settings
from tests.core.apps import serve, standalone_settings
from tests.factories import assert_error
from tests.smtp_server import free_port

UNREACHABLE_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/x"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called `name`, keyed by their sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


# --- readiness -------------------------------------------------------------------


async def test_readyz_is_unavailable_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = standalone_settings(tmp_path, DATABASE_URL=UNREACHABLE_POSTGRES)
    async with serve(settings) as client:
        response = await client.get("/readyz")
    error = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    checks = error["details"]["checks"]
    assert checks["database"].startswith("unreachable")
    assert checks["redis"] == "in-process"


async def test_readyz_is_unavailable_when_redis_is_unreachable(tmp_path: Path) -> None:
    settings = standalone_settings(tmp_path, REDIS_URL=UNREACHABLE_REDIS)
    async with serve(settings) as client:
        response = await client.get("/readyz")
    error = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    checks = error["details"]["checks"]
    assert checks["redis"].startswith("unreachable")
    assert checks["database"] == "ok"


async def test_readyz_is_unavailable_when_the_object_store_is_unreachable(
    tmp_path: Path,
) -> None:
    settings = standalone_settings(
        tmp_path,
        STORAGE_BACKEND="s3",
        AWS_S3_BUCKET="beatmachine-media",
        AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
        STORAGE_TIMEOUT=1,
    )
    async with serve(settings) as client:
        response = await client.get("/readyz")
    error = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    checks = error["details"]["checks"]
    assert checks["storage"].startswith("unreachable")
    assert checks["database"] == "ok"


async def test_readyz_failure_does_not_leak_connection_details(tmp_path: Path) -> None:
    settings = standalone_settings(tmp_path, DATABASE_URL=UNREACHABLE_POSTGRES)
    async with serve(settings) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "127.0.0.1" not in response.text
    assert "postgres@" not in response.text


async def test_healthz_stays_ok_while_dependencies_are_down(tmp_path: Path) -> None:
    settings = standalone_settings(
        tmp_path, DATABASE_URL=UNREACHABLE_POSTGRES, REDIS_URL=UNREACHABLE_REDIS
    )
    async with serve(settings) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"status": "ok"}}


# --- metrics -------------------------------------------------------------------------


@pytest.fixture
def scraper(settings: Settings) -> dict[str, str]:
    """The headers of a Prometheus scraper configured with the app's token."""
    return {"Authorization": f"Bearer {settings.metrics_token}"}


async def scrape(client: httpx.AsyncClient, scraper: dict[str, str]) -> str:
    response = await client.get("/metrics", headers=scraper)
    assert response.status_code == 200, response.text
    return response.text


async def test_metrics_are_served_in_prometheus_text_format(
    client: httpx.AsyncClient, scraper: dict[str, str]
) -> None:
    response = await client.get("/metrics", headers=scraper)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE http_requests_total counter" in response.text
    assert "# TYPE http_request_duration_seconds histogram" in response.text


async def test_metrics_are_never_cached(client: httpx.AsyncClient, scraper: dict[str, str]) -> None:
    response = await client.get("/metrics", headers=scraper)
    assert response.headers["cache-control"] == "no-store"


async def test_metrics_without_a_token_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert_error(response, 401, "AUTH_REQUIRED")
    assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert "http_requests_total" not in response.text


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong-token", "Bearer test-metrics-token-and-more", "Basic dGVzdDp0ZXN0", "Bearer"],
)
async def test_metrics_with_another_token_are_refused(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get("/metrics", headers={"Authorization": authorization})
    assert_error(response, 401, "AUTH_REQUIRED")


async def test_metrics_are_not_served_without_a_configured_token(tmp_path: Path) -> None:
    settings = standalone_settings(tmp_path, METRICS_TOKEN="")
    async with serve(settings) as client:
        response = await client.get("/metrics", headers={"Authorization": "Bearer "})
    error = assert_error(response, 404, "NOT_FOUND")
    assert "details" not in error


async def test_request_counter_is_labelled_by_route_template_and_status(
    client: httpx.AsyncClient, scraper: dict[str, str]
) -> None:
    for user_id in ("usr_missing1", "usr_missing2"):
        assert (await client.get(f"/api/users/{user_id}")).status_code == 404
    assert (await client.get("/healthz")).status_code == 200

    text = await scrape(client, scraper)
    counts = samples(text, "http_requests_total")
    assert counts[labels(method="GET", route="/api/users/{user_id}", status="404")] == 2
    assert counts[labels(method="GET", route="/healthz", status="200")] == 1
    assert "usr_missing1" not in text
    assert "usr_missing2" not in text


async def test_latency_histogram_is_labelled_by_route_template_and_status(
    client: httpx.AsyncClient, scraper: dict[str, str]
) -> None:
    for user_id in ("usr_missing1", "usr_missing2", "usr_missing3"):
        await client.get(f"/api/users/{user_id}")

    text = await scrape(client, scraper)
    observed = samples(text, "http_request_duration_seconds_count")
    assert observed[labels(method="GET", route="/api/users/{user_id}", status="404")] == 3
    buckets = samples(text, "http_request_duration_seconds_bucket")
    infinite = labels(method="GET", route="/api/users/{user_id}", status="404", le="+Inf")
    assert buckets[infinite] == 3


async def test_unmatched_paths_share_one_route_label(
    client: httpx.AsyncClient, scraper: dict[str, str]
) -> None:
    await client.get("/api/nothing/here/abc123")
    await client.get("/api/nothing/else/def456")

    text = await scrape(client, scraper)
    counts = samples(text, "http_requests_total")
    assert counts[labels(method="GET", route="unmatched", status="404")] == 2
    assert "abc123" not in text
    assert "def456" not in text


async def test_server_errors_are_counted_by_route(
    app: FastAPI, client: httpx.AsyncClient, scraper: dict[str, str]
) -> None:
    async def explode(thing_id: str) -> None:
        raise RuntimeError(f"broken {thing_id}")

    app.add_api_route("/api/test-only/things/{thing_id}", explode, methods=["GET"])
    assert (await client.get("/api/test-only/things/t1")).status_code == 500

    text = await scrape(client, scraper)
    route = "/api/test-only/things/{thing_id}"
    assert (
        samples(text, "http_requests_total")[labels(method="GET", route=route, status="500")] == 1
    )
    assert samples(text, "http_server_errors_total")[labels(route=route)] == 1
